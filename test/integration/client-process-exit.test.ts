import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { startTestServer, tempDir, type TestServer } from "../helpers/test-server.js";

const CLIENT = new URL("../../dist/client/index.js", import.meta.url).href;
/** Long enough for a child that should exit to do so on a loaded machine; one that is held open is killed then. */
const EXIT_WITHIN_MS = 20_000;

/** Runs `body` (an ES module using `CacheClient`) in a child process; resolves with its exit code (null when it had to be killed) and output. */
async function runChild(body: string, onStdout: (stdout: string) => void = () => {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = tempDir("tiercache-exit-");
  try {
    const script = join(dir.path, "child.mjs");
    writeFileSync(script, `import { CacheClient } from ${JSON.stringify(CLIENT)};\n${body}\n`);
    const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      onStdout(stdout);
    });
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), EXIT_WITHIN_MS);
    const [code] = (await once(child, "exit")) as [number | null];
    clearTimeout(killer);
    return { code, stdout, stderr };
  } finally {
    dir.remove();
  }
}

describe("a client that is never closed", () => {
  let t: TestServer;
  let proxy: TcpProxy;
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" });
    proxy = await startTcpProxy({ host: "127.0.0.1", port: t.server.port });
  });
  afterAll(async () => {
    await proxy?.close();
    await t?.dispose();
  });

  it("with a local tier whose Watch stream is open, lets the process exit once its work is done", async () => {
    const run = await runChild(`
      const client = new CacheClient({ address: ${JSON.stringify(t.server.address)}, localTier: true });
      await client.set("k", "v");
      for (let i = 0; i < 200 && client.getLocal("k") === undefined; i++) {
        await client.get("k");
        await new Promise((r) => setTimeout(r, 20));
      }
      console.log(JSON.stringify({ local: client.getLocal("k") }));
    `);
    expect(run.stderr).toBe("");
    expect(run.stdout.trim()).toBe(JSON.stringify({ local: "v" })); // served locally: the Watch stream was open
    expect(run.code).toBe(0);
  });

  it("with a local tier, still waits for a call in flight", async () => {
    let paused = false;
    const run = await runChild(
      `
      const client = new CacheClient({ address: "127.0.0.1:${proxy.port}", localTier: true, retryReads: false });
      await client.set("k", "v");
      for (let i = 0; i < 200 && client.getLocal("k") === undefined; i++) await client.get("k");
      console.log("ready");
      await new Promise((r) => setTimeout(r, 200));
      const read = [];
      for await (const [key, value] of client.streamGet(["k"])) read.push([key, value]);
      console.log(JSON.stringify({ read }));
    `,
      (stdout) => {
        if (paused || !stdout.includes("ready")) return;
        paused = true;
        proxy.pause(); // the stream (no deadline, so no grpc-js timer) now waits on the server, with no timer of the program's running
        setTimeout(() => proxy.resume(), 2_000);
      },
    );
    expect(run.stdout).toBe(`ready\n${JSON.stringify({ read: [["k", "v"]] })}\n`); // not an exit (code 13) with the call unsettled
    expect(run.code).toBe(0);
  });

  it("with a local tier, still waits for a call in flight when the client is closed, as without one (helper-99)", async () => {
    for (const localTier of [true, false]) {
      let paused = false;
      const run = await runChild(
        `
        const client = new CacheClient({ address: "127.0.0.1:${proxy.port}", localTier: ${localTier}, retryReads: false });
        await client.set("k", "v");
        console.log("ready");
        await new Promise((r) => setTimeout(r, 200));
        const reading = (async () => {
          const read = [];
          for await (const [key, value] of client.streamGet(["k"])) read.push([key, value]);
          return read;
        })();
        await new Promise((r) => setTimeout(r, 200));
        client.close();
        console.log(JSON.stringify({ read: await reading }));
      `,
        (stdout) => {
          if (paused || !stdout.includes("ready")) return;
          paused = true;
          proxy.pause();
          setTimeout(() => proxy.resume(), 2_000);
        },
      );
      expect(run.stdout, `localTier ${localTier}`).toBe(`ready\n${JSON.stringify({ read: [["k", "v"]] })}\n`);
      expect(run.code, `localTier ${localTier}`).toBe(0);
    }
  });

  it("with a local tier, lets the process exit when a streamGet is left unfinished, as without one", async () => {
    for (const localTier of [true, false]) {
      const run = await runChild(`
        const client = new CacheClient({ address: ${JSON.stringify(t.server.address)}, localTier: ${localTier} });
        const first = await client.streamGet(["a", "b"])[Symbol.asyncIterator]().next();
        console.log(JSON.stringify(first.value));
      `);
      expect(run.stdout, `localTier ${localTier}`).toBe(`${JSON.stringify(["a", null])}\n`);
      expect(run.code, `localTier ${localTier}: killed when null`).toBe(0);
    }
  });

  it("without a local tier, lets the process exit too", async () => {
    const run = await runChild(`
      const client = new CacheClient({ address: ${JSON.stringify(t.server.address)} });
      await client.set("k2", 1);
      console.log(JSON.stringify({ value: await client.get("k2") }));
    `);
    expect(run.stdout.trim()).toBe(JSON.stringify({ value: 1 }));
    expect(run.code).toBe(0);
  });
});
