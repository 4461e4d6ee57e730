import { afterAll, describe, expect, it } from "vitest";
import { CoherenceRun, COHERENCE_BOUND_MS } from "../helpers/coherence-run.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("coherence (a): Redis paused (SIGSTOP) under a mixed load through two instances", () => {
  let redis: TestRedis | undefined;
  const servers: TestServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.dispose();
    await redis?.stop(true);
  });

  it("no instance or local tier serves a value Redis replaced for longer than the bound", async () => {
    redis = await startTestRedis({ args: [] });
    for (let i = 0; i < 2; i++) servers.push(await startTestServer({ storage: "redis", redisUrl: redis.url }));
    const [a, b] = servers as [TestServer, TestServer];
    const run = await CoherenceRun.start("(a) Redis paused 4 times briefly, then 4 s", redis.url, [
      { name: "A", address: a.server.address },
      { name: "B", address: b.server.address },
    ], { boundMs: COHERENCE_BOUND_MS, writersPerInstance: 4, keyCount: 96 });

    await sleep(2_000);
    const before = run.acknowledged;
    // Brief stalls under load (attempts time out, the breakers open), then one longer than the silence bound.
    for (const ms of [800, 600, 900, 700, 4_000]) {
      redis.pause();
      await sleep(ms);
      redis.resume();
      await sleep(800);
    }
    await sleep(300); // little load after the fault: later writes would hide a lost invalidation
    const result = await run.finish(COHERENCE_BOUND_MS + 1_000);

    expect(before).toBeGreaterThan(0);
    expect(result.uncertain, "writes failed while Redis was paused").toBeGreaterThan(0);
    expect(run.acknowledged, "writes succeeded again after SIGCONT").toBeGreaterThan(before);
    
    expect(result.examples).toEqual([]);
    expect(result.stalePastBound).toBe(0);
  }, 60_000);
});
