import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runClientScriptAgainstSilentServer } from "../helpers/silent-server-script.js";
import { startTcpProxy } from "../helpers/tcp-proxy.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * A client whose server goes silent right after its last answer, inside the 250 ms before its idle LeaseSession
 * stream is half-closed: the stream carries no call, so no deadline cancels it; the client cancels it when the server
 * does not end it within a second, so the process exits as it does with unary calls. The other cases exited before.
 */
const CASES: { name: string; client: string; work: string }[] = [
  { name: "unary calls (baseline)", client: "", work: `await client.set("warm", "w");\n const got = await client.get("warm");` },
  { name: "wrap over the LeaseSession, silent right after the last answer", client: "", work: `const got = await client.wrap("warm2", async () => "w", { ttl: 60000 });\n await client.settled();` },
  {
    name: "wrap over the LeaseSession, silent only after the idle stream was closed (600 ms)",
    client: "",
    work: `const got = await client.wrap("warm3", async () => "w", { ttl: 60000 });\n await client.settled();\n await new Promise((r) => setTimeout(r, 600));`,
  },
  { name: "wrap with a local tier, silent right after the last answer", client: ", localTier: true", work: `const got = await client.wrap("warm4", async () => "w", { ttl: 60000 });\n await client.settled();` },
];

describe("a client whose server goes silent once its work is done, never closed", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" });
  });
  afterAll(async () => {
    await t?.dispose();
  });

  it.each(CASES)("$name: the process exits", async ({ client, work }) => {
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: t.server.port });
    try {
      const run = await runClientScriptAgainstSilentServer(`
        const client = new CacheClient({ address: "127.0.0.1:${proxy.port}", timeoutMs: 1000${client} });
        ${work}
        console.log("ready");
        await go();
        console.log("done " + got);
      `, proxy);
      expect({ code: run.code, exitedWithin10s: run.msAfterDone !== undefined && run.msAfterDone < 10_000 }, `exited (or was SIGKILLed at 20 s) ${run.msAfterDone} ms after "done"; ${run.stdout} ${run.stderr}`).toEqual({ code: 0, exitedWithin10s: true });
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
