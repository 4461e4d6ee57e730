import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../server/logger.js";
import { createRedisClient } from "../../server/tiers/redis-connection.js";
import { RedisInvalidationChannel } from "../../server/tiers/redis-invalidation.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";

/**
 * Found by the fault conformance runs: after a reconnect ioredis re-subscribed
 * by itself (autoResubscribe), a promise nobody handled; when the connection
 * dropped again before it settled, the rejection was unhandled and ended the
 * server process. The channel now re-subscribes itself, handling failures.
 */
describe("the invalidation subscription through repeated drops", () => {
  let redis: TestRedis | undefined;
  afterAll(async () => {
    await redis?.stop(true);
  });

  it("leaves no unhandled rejection, and is subscribed again at the end", async () => {
    redis = await startTestRedis();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    const subscriber = createRedisClient({ target: { kind: "standalone", url: redis.url }, tls: false, connectTimeoutMs: 2_000, logger: silentLogger });
    const channel = new RedisInvalidationChannel(subscriber, async () => 0, {
      keyPrefix: "resub",
      logger: silentLogger,
      handler: { apply: () => {}, resync: () => {} },
      attemptTimeoutMs: 500,
      settleMs: 1_000,
      startTimeoutMs: 1_000,
    });
    try {
      await channel.start();
      let readies = 0;
      subscriber.on("ready", () => {
        readies++;
        if (readies < 7) setImmediate(() => (subscriber as { stream?: { destroy(): void } }).stream?.destroy());
      });
      (subscriber as { stream?: { destroy(): void } }).stream?.destroy();
      const until = Date.now() + 15_000;
      while (readies < 7 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(readies).toBeGreaterThanOrEqual(7);
      expect(unhandled).toEqual([]);
      const checker = createRedisClient({ target: { kind: "standalone", url: redis.url }, tls: false, connectTimeoutMs: 2_000, logger: silentLogger });
      try {
        await checker.connect();
        expect(await checker.pubsub("NUMSUB", "resub:invalidations")).toEqual(["resub:invalidations", 1]);
      } finally {
        checker.disconnect();
      }
    } finally {
      process.off("unhandledRejection", onUnhandled);
      await channel.close();
    }
  });
});
