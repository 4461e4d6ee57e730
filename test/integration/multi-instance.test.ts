import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheClient } from "../../client/index.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("several server instances over one Redis", () => {
  let redis: TestRedis;
  let one: TestServer;
  let two: TestServer;
  const clients: CacheClient[] = [];

  beforeAll(async () => {
    redis = await startTestRedis();
    one = await startTestServer({ storage: "redis", redisUrl: redis.url });
    two = await startTestServer({ storage: "redis", redisUrl: redis.url });
  });
  afterAll(async () => {
    clients.forEach((c) => c.close());
    await one?.dispose();
    await two?.dispose();
    await redis?.stop();
  });

  it("drops stale copies in the other instance's memory tier and in clients watching it", async () => {
    const a = new CacheClient({ address: one.server.address, localTier: true });
    const b = new CacheClient({ address: two.server.address, localTier: true });
    clients.push(a, b);
    await a.set("shared", "v0");
    for (let i = 0; i < 100 && b.getLocal("shared") === undefined; i++) {
      await b.get("shared");
      await sleep(10);
    }
    expect(b.getLocal("shared")).toBe("v0");
    expect((await two.client.getEntry("shared"))?.tier).toBe("memory");

    let worstMs = 0;
    for (let i = 1; i <= 20; i++) {
      await a.set("shared", `v${i}`);
      const acked = Date.now();
      while ((await b.get("shared")) !== `v${i}`) {
        if (Date.now() - acked > 3_000) throw new Error(`client b still served a stale value 3 s after write ${i}`);
        await sleep(2);
      }
      worstMs = Math.max(worstMs, Date.now() - acked);
    }
    console.log(`cross-instance: worst time from acknowledged write to fresh read on the other instance: ${worstMs} ms`);
    expect(worstMs).toBeLessThan(2_000);

    await a.delete("shared");
    for (let i = 0; i < 200 && (await b.get("shared")) !== undefined; i++) await sleep(5);
    expect(await b.get("shared")).toBeUndefined();
    await a.set("gone", 1);
    await b.get("gone");
    await a.clear();
    for (let i = 0; i < 200 && (await b.get("gone")) !== undefined; i++) await sleep(5);
    expect(await b.get("gone")).toBeUndefined();
  });
});
