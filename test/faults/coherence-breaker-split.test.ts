import { afterAll, describe, expect, it } from "vitest";
import { createRedisClient } from "../../server/tiers/redis-connection.js";
import { RedisTier } from "../../server/tiers/redis-tier.js";
import { silentLogger } from "../../server/logger.js";
import { CoherenceRun, COHERENCE_BOUND_MS } from "../helpers/coherence-run.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("coherence (d): one instance's breaker open (its data connection stalled), the other's closed", () => {
  let redis: TestRedis | undefined;
  let proxy: TcpProxy | undefined;
  const servers: TestServer[] = [];
  afterAll(async () => {
    proxy?.resume();
    for (const s of servers) await s.dispose();
    await proxy?.close();
    await redis?.stop(true);
  });

  it("B and every local tier drop what A changed, though A could not publish while its breaker was open", async () => {
    redis = await startTestRedis({ args: [] });
    proxy = await startTcpProxy(redis);
    const viaProxy = `redis://${proxy.host}:${proxy.port}`;
    // A: data (and publishing) through the proxy, with a breaker that opens within a second or two of failures;
    // its subscription goes straight to Redis, so A still hears B.
    const tier = await RedisTier.connect({ url: viaProxy, breakerRollingWindowMs: 2_000, breakerVolumeThreshold: 5, breakerResetTimeoutMs: 1_000 });
    const subscriber = createRedisClient({ target: { kind: "standalone", url: redis.url }, tls: false, connectTimeoutMs: 2_000, logger: silentLogger });
    servers.push(await startTestServer({ storage: "redis", redisUrl: viaProxy }, { durable: tier, invalidationSubscriber: subscriber }));
    servers.push(await startTestServer({ storage: "redis", redisUrl: redis.url }));
    const [a, b] = servers as [TestServer, TestServer];
    const run = await CoherenceRun.start("(d) A's data connection stalled 5 s, A's breaker open, B's closed", redis.url, [
      { name: "A", address: a.server.address },
      { name: "B", address: b.server.address },
    ], { boundMs: COHERENCE_BOUND_MS, writersPerInstance: 4, keyCount: 96 });

    await sleep(2_000);
    const breakers = { a: new Set<string>(), b: new Set<string>() };
    proxy.pause();
    for (let t = 0; t < 5_000; t += 50) {
      breakers.a.add(a.server.durableBreaker());
      breakers.b.add(b.server.durableBreaker());
      await sleep(50);
    }
    proxy.resume();
    await sleep(300); // little load after the fault: later writes would hide a lost invalidation

    const result = await run.finish(COHERENCE_BOUND_MS + 1_000);

    expect([...breakers.a], "A's breaker opened").toContain("open");
    expect([...breakers.b], "B's breaker stayed closed").toEqual(["closed"]);
    expect(result.failures.UNAVAILABLE ?? 0, "A's writes failed meanwhile").toBeGreaterThan(0);
    expect(result.examples).toEqual([]);
    expect(result.stalePastBound).toBe(0);
  }, 60_000);
});
