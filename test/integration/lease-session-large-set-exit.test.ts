import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runClientScriptAgainstSilentServer } from "../helpers/silent-server-script.js";
import { startTcpProxy } from "../helpers/tcp-proxy.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * LeaseSession.call opens a stream (#open) before deciding that the call goes unary (a Set of >= 64 KiB). If no stream
 * is open then (the wrap's GetOrLease stream idled out during a loader longer than 250 ms), the new stream carries no
 * call: no deadline, no idle timer (set only by #sendWaiting, i.e. at READY), no end timer. When the server has gone
 * silent, READY never comes and the stream keeps the process alive until keepalive finds the connection dead (~40 s);
 * the same script with a small value (the Set rides the stream and its deadline cancels it) exits at once.
 */
const script = (address: string, valueChars: number) => `
  const client = new CacheClient({ address: "${address}", timeoutMs: 1000 });
  const got = await client.wrap("big${valueChars}", async () => {
    console.log("ready");
    await go();
    await new Promise((r) => setTimeout(r, 400)); // the loader outlasts the session's 250 ms idle time
    return "x".repeat(${valueChars});
  }, { ttl: 60000 });
  await client.settled();
  console.log("done " + got.length);
`;

describe("a wrap whose server goes silent during its loader, client never closed", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" });
  });
  afterAll(async () => {
    await t?.dispose();
  });

  it.each([100, 70_000])("value of %i chars: the process exits", async (chars) => {
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: t.server.port });
    try {
      const run = await runClientScriptAgainstSilentServer(script(`127.0.0.1:${proxy.port}`, chars), proxy);
      expect({ code: run.code, exitedWithin10s: run.msAfterDone !== undefined && run.msAfterDone < 10_000 }, `exited (or was SIGKILLed at 20 s) ${run.msAfterDone} ms after "done"; ${run.stdout} ${run.stderr}`).toEqual({ code: 0, exitedWithin10s: true });
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
