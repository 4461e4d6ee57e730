import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../server/logger.js";
import { createRedisClient } from "../../server/tiers/redis-connection.js";
import { FAULT_BOUND_MS } from "../helpers/eventually.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("tags under faults: the invalidating instance's announcement does not reach the other", () => {
  let redis: TestRedis | undefined;
  let proxy: TcpProxy | undefined;
  const servers: TestServer[] = [];
  afterAll(async () => {
    proxy?.resume();
    for (const s of servers) await s.dispose();
    await proxy?.close();
    await redis?.stop(true);
  });

  it("an instance that hears nothing stops serving values whose tags were invalidated within the fault bound, it does not keep its tag epochs", async () => {
    redis = await startTestRedis({ args: [] });
    proxy = await startTcpProxy(redis);
    const subscriber = createRedisClient({ target: { kind: "standalone", url: `redis://${proxy.host}:${proxy.port}` }, tls: false, connectTimeoutMs: 2_000, logger: silentLogger });
    servers.push(await startTestServer({ storage: "redis", redisUrl: redis.url }, { invalidationSubscriber: subscriber }));
    servers.push(await startTestServer({ storage: "redis", redisUrl: redis.url }));
    const [a, b] = servers as [TestServer, TestServer];
    await b.client.set("k", "v", { tags: ["t"] });
    expect(await a.client.get("k")).toBe("v");
    expect((await a.client.getEntry("k"))?.tier).toBe("memory"); // A holds the value and tag t's epoch

    proxy.pause(); // A's subscription goes silent: B's announcement of the invalidation never reaches A
    await b.client.invalidateTags(["t"]);
    const acknowledged = Date.now();
    let servedFor = 0;
    while ((await a.client.get("k")) !== undefined) {
      servedFor = Date.now() - acknowledged;
      if (servedFor > 2 * FAULT_BOUND_MS) break;
      await sleep(20);
    }
    console.log(`A served the invalidated value for ${servedFor} ms after the invalidation was acknowledged (bound ${FAULT_BOUND_MS} ms)`);
    expect(servedFor).toBeLessThanOrEqual(FAULT_BOUND_MS);
    expect(a.server.invalidationStats()!.flushes).toBeGreaterThan(0);
    proxy.resume();
    await b.client.set("k", "v2", { tags: ["t"] });
    expect(await a.client.get("k")).toBe("v2");
  }, 30_000);
});
