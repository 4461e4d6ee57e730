import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheClient } from "../../client/index.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * A client balanced over several instances watches only one of them: it may
 * keep local copies only of what that instance answered, since another
 * instance's later flush (after a missed invalidation) never reaches it.
 */
describe("local tier over several instances", () => {
  let redis: TestRedis;
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    redis = await startTestRedis();
    a = await startTestServer({ storage: "redis", redisUrl: redis.url });
    b = await startTestServer({ storage: "redis", redisUrl: redis.url });
  });
  afterAll(async () => {
    await a?.dispose();
    await b?.dispose();
    await redis?.stop();
  });

  it("keeps copies only of reads answered by the instance it watches", async () => {
    const client = new CacheClient({ addresses: [a.server.address, b.server.address], localTier: true });
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
      await a.client.setMany(keys.map((k) => [k, k] as const));
      await client.get("warm-up");
      for (const key of keys) expect(await client.get(key)).toBe(key);
      const kept = keys.filter((key) => client.getLocal(key) !== undefined).length;
      const servedByA = (await a.client.stats()).reduce((n, ns) => n + ns.tiers[0]!.hits + ns.tiers[0]!.misses, 0);
      console.log(`over two instances: ${kept} of ${keys.length} reads kept locally (instance A answered about ${servedByA})`);
      expect(kept).toBeGreaterThan(0);
      expect(kept).toBeLessThan(keys.length);
    } finally {
      client.close();
    }
  });
});
