import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CacheClient, RpcError, Status, statusName } from "../../client/index.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

describe("the service while Redis is killed and restarted", () => {
  const dir = mkdtempSync(join(tmpdir(), "tiercache-outage-"));
  const durableArgs = ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir];
  let redis: TestRedis | undefined;
  let t: TestServer | undefined;
  let unhandled = 0;
  const onUnhandled = () => unhandled++;
  process.on("unhandledRejection", onUnhandled);

  afterAll(async () => {
    process.off("unhandledRejection", onUnhandled);
    await t?.dispose();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("never hangs, keeps serving memory-tier reads, loses no acknowledged write, and recovers", async () => {
    redis = await startTestRedis({ args: durableArgs });
    const port = redis.port;
    t = await startTestServer({ storage: "redis", redisUrl: redis.url, redisTimeoutMs: 200, redisBreakerResetMs: 500 });
    const client = new CacheClient({ address: t.server.address, timeoutMs: 1_000, retryReads: false });
    const hot = Array.from({ length: 20 }, (_, i) => `hot-${i}`);
    for (const key of hot) await client.set(key, key);
    for (const key of hot) await client.get(key);

    const acknowledged = new Map<string, number>();
    const statuses = new Map<string, number>();
    const outageLatencies: number[] = [];
    const state = { phase: "before" as "before" | "outage" | "after" };
    let hotReadFailures = 0; // during the outage only: after it, memory copies are dropped (resync) and reads go to Redis again
    let slowest = 0;
    let stop = false;
    let seq = 0;
    const load = (async () => {
      while (!stop) {
        const n = ++seq;
        const started = Date.now();
        const ops = [
          client.set(`w-${n}`, n).then(() => acknowledged.set(`w-${n}`, n)),
          client.get(hot[n % hot.length]!).then((v) => {
            if (v !== hot[n % hot.length]) throw new Error("hot key missing");
          }),
          client.get(`cold-${n}`),
        ];
        const results = await Promise.allSettled(ops);
        const elapsed = Date.now() - started;
        slowest = Math.max(slowest, elapsed);
        if (state.phase === "outage") outageLatencies.push(elapsed);
        results.forEach((r, i) => {
          const name = r.status === "fulfilled" ? "OK" : r.reason instanceof RpcError ? statusName(r.reason.code) : String(r.reason);
          if (state.phase === "outage") statuses.set(name, (statuses.get(name) ?? 0) + 1);
          if (i === 1 && r.status === "rejected" && state.phase === "outage") hotReadFailures++;
        });
        await sleep(5);
      }
    })();

    await sleep(500);
    state.phase = "outage";
    const killedAt = Date.now();
    await redis.stop(true);
    let openedAt = 0;
    while (Date.now() - killedAt < 10_000) {
      const res = t.server.durableBreaker();
      if (res === "open") {
        openedAt = Date.now();
        break;
      }
      await sleep(10);
    }
    await sleep(1_500);
    state.phase = "after";
    redis = await startTestRedis({ args: durableArgs, port });
    let closedAt = 0;
    const restartedAt = Date.now();
    while (Date.now() - restartedAt < 15_000) {
      if ((t.server.durableBreaker()) === "closed" && (await client.set("probe", 1).then(() => true, () => false))) {
        closedAt = Date.now();
        break;
      }
      await sleep(20);
    }
    stop = true;
    await load;

    const p99 = percentile(outageLatencies, 99);
    const summary = {
      killToBreakerOpenMs: openedAt - killedAt,
      restartToRecoveredMs: closedAt - restartedAt,
      outageCallsByStatus: Object.fromEntries(statuses),
      outageP50Ms: percentile(outageLatencies, 50),
      outageP99Ms: p99,
      slowestBatchMs: slowest,
      hotReadFailures,
      acknowledgedWrites: acknowledged.size,
      unhandledRejections: unhandled,
    };
    console.log(`redis outage: ${JSON.stringify(summary)}`);

    expect(openedAt).toBeGreaterThan(0);
    expect(closedAt).toBeGreaterThan(0);
    expect(slowest).toBeLessThan(1_000 + 1_500);
    expect(hotReadFailures).toBe(0);
    expect([...statuses.keys()].every((s) => s === "OK" || s === "UNAVAILABLE")).toBe(true);
    expect(statuses.get("UNAVAILABLE") ?? 0).toBeGreaterThan(0);
    expect(unhandled).toBe(0);

    const verifier = new CacheClient({ address: t.server.address, timeoutMs: 5_000 });
    const keys = [...acknowledged.keys()];
    for (let i = 0; i < keys.length; i += 500) {
      const batch = keys.slice(i, i + 500);
      const got = await verifier.getMany(batch);
      for (const key of batch) expect(got.get(key), `acknowledged write ${key}`).toBe(acknowledged.get(key));
    }
    verifier.close();
    client.close();
  });

  it("with degraded writes on, accepts writes into memory and says so", async () => {
    const outageRedis = await startTestRedis();
    const s = await startTestServer({ storage: "redis", redisUrl: outageRedis.url, redisTimeoutMs: 200, degradedWrites: true });
    try {
      await s.client.set("k", 1);
      await outageRedis.stop(true);
      const outcome = await s.client.set("k", 2);
      expect(outcome.degraded).toBe(true);
      expect(await s.client.get("k")).toBe(2);
      const err = await s.client.delete("k").catch((e: unknown) => e);
      expect(RpcError.is(err, Status.UNAVAILABLE)).toBe(true);
      const [stats] = await s.client.stats({ namespace: "default" });
      expect(stats?.degradedWrites).toBe(1);
    } finally {
      await s.dispose();
    }
  });
});
