import { afterAll, describe, expect, it } from "vitest";
import { CoherenceRun, COHERENCE_BOUND_MS } from "../helpers/coherence-run.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";
import { listeningAddress, runTiercache, type TiercacheProcess } from "../helpers/tiercache-process.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("coherence (e): an instance killed (SIGKILL) mid-write", () => {
  let redis: TestRedis | undefined;
  let proxy: TcpProxy | undefined;
  let c: TiercacheProcess | undefined;
  const servers: TestServer[] = [];
  afterAll(async () => {
    if (c && c.child.exitCode === null && c.child.signalCode === null) {
      c.child.kill("SIGKILL");
      await c.exit;
    }
    for (const s of servers) await s.dispose();
    await proxy?.close();
    await redis?.stop(true);
  });

  it("the surviving instances and their local tiers drop what the dead one wrote but never announced", async () => {
    redis = await startTestRedis({ args: [] });
    // C, a real `tiercache serve` process, reaches Redis over a 25 ms link: each of its writes is applied
    // well before it could announce it, so killing it mid-write leaves applied, unannounced changes.
    proxy = await startTcpProxy(redis);
    proxy.latencyMs = 25;
    c = runTiercache(["serve", "--port", "0", "--redis-url", `redis://${proxy.host}:${proxy.port}`]);
    const cAddress = await listeningAddress(c);
    for (let i = 0; i < 2; i++) servers.push(await startTestServer({ storage: "redis", redisUrl: redis.url }));
    const [a, b] = servers as [TestServer, TestServer];
    const run = await CoherenceRun.start("(e) instance C killed mid-write", redis.url, [
      { name: "A", address: a.server.address },
      { name: "B", address: b.server.address },
      { name: "C", address: cAddress },
    ], { boundMs: COHERENCE_BOUND_MS, writersPerInstance: 4, keyCount: 96 });

    await sleep(2_000);
    const fromC = () => run.writes.filter((w) => w.writer.startsWith("C"));
    const beforeKill = fromC().filter((w) => w.outcome === "OK").length;
    const inFlight = fromC().length;
    c.child.kill("SIGKILL");
    await c.exit;
    run.stopReading("C");
    await sleep(300); // little load after the fault: later writes would hide a lost invalidation
    const result = await run.finish(COHERENCE_BOUND_MS + 1_000);

    expect(beforeKill, "C took writes before it died").toBeGreaterThan(0);
    expect(fromC().slice(inFlight).filter((w) => w.outcome !== "OK").length, "C's writes failed once it died").toBeGreaterThan(0);
    expect(result.examples).toEqual([]);
    expect(result.stalePastBound).toBe(0);
    expect(a.server.invalidationStats()!.flushes, "A noticed C's silence").toBeGreaterThan(0);
    expect(b.server.invalidationStats()!.flushes, "B noticed C's silence").toBeGreaterThan(0);
  }, 60_000);
});
