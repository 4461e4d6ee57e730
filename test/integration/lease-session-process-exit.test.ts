import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { runClientScriptAgainstSilentServer } from "../helpers/silent-server-script.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";


/** Runs `body` in a child; when it prints "ready", pauses the proxy and then tells the child (stdin) to go on. */

describe("a client (no local tier) whose server stops answering, never closed", () => {
  let t: TestServer;
  let proxy: TcpProxy;
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" });
  });
  afterAll(async () => {
    await t?.dispose();
  });

  it("unary: once its calls have failed DEADLINE_EXCEEDED and its work is done, the process exits (baseline)", async () => {
    proxy = await startTcpProxy({ host: "127.0.0.1", port: t.server.port });
    try {
      const run = await runClientScriptAgainstSilentServer(`
        const client = new CacheClient({ address: "127.0.0.1:${proxy.port}", timeoutMs: 1000, retryReads: false });
        await client.set("warm", 1);
        console.log("ready");
        await go();
        const got = await client.get("k").then(() => "ok", (e) => String(e.code ?? e));
        console.log("done " + got);
      `, proxy);
      expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 0, stdout: expect.stringMatching(/done 4\n$/) });
    } finally {
      await proxy.close();
    }
  }, 90_000);

  it("wrap over the LeaseSession: once its calls have failed DEADLINE_EXCEEDED and its work is done, the process exits too", async () => {
    proxy = await startTcpProxy({ host: "127.0.0.1", port: t.server.port });
    try {
      const run = await runClientScriptAgainstSilentServer(`
        const client = new CacheClient({ address: "127.0.0.1:${proxy.port}", timeoutMs: 1000, onBackgroundError: (e) => console.log("background " + String(e.code ?? e)) });
        await client.wrap("warm", async () => "w", { ttl: 60000 });
        console.log("ready");
        await go();
        const got = await client.wrap("k", async () => "loaded", { ttl: 60000, leaseWaitMs: 0 });
        await client.settled();
        console.log("done " + got);
      `, proxy);
      expect({ code: run.code, stdout: run.stdout, exitedWithin: run.msAfterDone !== undefined && run.msAfterDone < 15_000 }, `exited (or was killed) ${run.msAfterDone} ms after "done"; stderr: ${run.stderr}`).toEqual({
        code: 0,
        stdout: expect.stringMatching(/done loaded\n$/),
        exitedWithin: true,
      });
    } finally {
      await proxy.close();
    }
  }, 90_000);
});
