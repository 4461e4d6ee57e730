import { startChild } from "./child.js";
import { startRedis } from "./redis.js";

/**
 * The harness's own redis-server (lib/redis.js) with `count` keys preloaded
 * by the redis-load child, as the Redis-tier Get measurements read them.
 */
export async function startSeededRedis(count) {
  const redis = await startRedis();
  try {
    const seed = await startChild("redis-load", { url: redis.url });
    await seed.call("preload", { count });
    await seed.stop();
  } catch (err) {
    await redis.stop();
    throw err;
  }
  return redis;
}
