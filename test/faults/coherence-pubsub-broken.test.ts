import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../server/logger.js";
import { createRedisClient } from "../../server/tiers/redis-connection.js";
import { CoherenceRun, COHERENCE_BOUND_MS } from "../helpers/coherence-run.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("coherence (c): one instance's pub/sub connection alone broken", () => {
  let redis: TestRedis | undefined;
  let proxy: TcpProxy | undefined;
  const servers: TestServer[] = [];
  afterAll(async () => {
    proxy?.resume();
    for (const s of servers) await s.dispose();
    await proxy?.close();
    await redis?.stop(true);
  });

  it("A stops serving what it cannot hear about, through a silent stall and through a reset, and B is unaffected", async () => {
    redis = await startTestRedis({ args: [] });
    proxy = await startTcpProxy(redis);
    // A subscribes through the proxy; its data connection (and publishing) go straight to Redis.
    const subscriber = createRedisClient({ target: { kind: "standalone", url: `redis://${proxy.host}:${proxy.port}` }, tls: false, connectTimeoutMs: 2_000, logger: silentLogger });
    servers.push(await startTestServer({ storage: "redis", redisUrl: redis.url }, { invalidationSubscriber: subscriber }));
    servers.push(await startTestServer({ storage: "redis", redisUrl: redis.url }));
    const [a, b] = servers as [TestServer, TestServer];
    const run = await CoherenceRun.start("(c) A's subscription stalled 5 s, then reset and refused 2.5 s", redis.url, [
      { name: "A", address: a.server.address },
      { name: "B", address: b.server.address },
    ], { boundMs: COHERENCE_BOUND_MS, writersPerInstance: 1, keyCount: 160 });

    await sleep(2_000);
    const accepted = proxy.accepted;
    proxy.pause(); // silent: the connection stays up, nothing arrives
    await sleep(5_000);
    const flushedWhileSilent = a.server.invalidationStats()!.flushes;
    proxy.resume();
    await sleep(1_000);
    proxy.reset(); // broken: RST, and reconnections refused for a while
    await proxy.refuse();
    await sleep(2_500);
    await proxy.accept();
    await sleep(1_500);
    const result = await run.finish(COHERENCE_BOUND_MS + 1_000);

    expect(result.examples).toEqual([]);
    expect(result.stalePastBound).toBe(0);
    expect(flushedWhileSilent, "A flushed while it heard nothing").toBeGreaterThan(0);
    expect(proxy.accepted, "A reconnected its subscription").toBeGreaterThan(accepted);
    expect(b.server.invalidationStats()!.flushes, "B heard A throughout: nothing to flush").toBe(0);
  }, 60_000);
});
