import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CacheClient } from "../../client/index.js";
import { afterAll, describe, expect, it } from "vitest";
import { CoherenceRun, COHERENCE_BOUND_MS } from "../helpers/coherence-run.js";
import { freePort, startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("coherence (b): Redis killed (SIGKILL) and restarted under a mixed load through two instances", () => {
  const dir = mkdtempSync(join(tmpdir(), "tiercache-coherence-"));
  let redis: TestRedis | undefined;
  const servers: TestServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.dispose();
    await redis?.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it("no instance or local tier serves a value Redis no longer holds for longer than the bound", async () => {
    const port = await freePort();
    const durable = { port, dir, args: ["--appendonly", "yes", "--appendfsync", "always"] };
    redis = await startTestRedis(durable);
    for (let i = 0; i < 2; i++) servers.push(await startTestServer({ storage: "redis", redisUrl: redis.url }));
    const [a, b] = servers as [TestServer, TestServer];
    const run = await CoherenceRun.start("(b) Redis killed, restarted 3 s later", redis.url, [
      { name: "A", address: a.server.address },
      { name: "B", address: b.server.address },
    ], { boundMs: COHERENCE_BOUND_MS, writersPerInstance: 4, keyCount: 96 });

    await sleep(2_000);
    const before = run.acknowledged;
    await redis.stop(true);
    await sleep(3_000);
    redis = await startTestRedis(durable);
    const probe = new CacheClient({ address: a.server.address, timeoutMs: 1_000 });
    const restarted = Date.now();
    while (Date.now() - restarted < 10_000 && !(await probe.set("probe", 1).then(() => true, () => false))) await sleep(20);
    probe.close();
    const afterRestart = run.acknowledged;
    await sleep(300); // little load after the fault: later writes would hide a lost invalidation
    const result = await run.finish(COHERENCE_BOUND_MS + 1_000);

    expect(before).toBeGreaterThan(0);
    expect(result.uncertain, "writes failed while Redis was down").toBeGreaterThan(0);
    expect(run.acknowledged, "writes succeeded again after the restart").toBeGreaterThan(afterRestart);
    expect(result.examples).toEqual([]);
    expect(result.stalePastBound).toBe(0);
    expect(a.server.invalidationStats()!.flushes, "A noticed the outage").toBeGreaterThan(0);
    expect(b.server.invalidationStats()!.flushes, "B noticed the outage").toBeGreaterThan(0);
  }, 60_000);
});
