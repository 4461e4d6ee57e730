import { startChild } from "./child.js";
import { startRedis } from "./redis.js";

/** Writes `count` keys into the Redis at `url` through the redis-load child, as the Redis-tier Get measurements read them. */
export async function preloadRedis(url, count) {
  const seed = await startChild("redis-load", { url });
  await seed.call("preload", { count });
  await seed.stop();
}

/** The harness's own redis-server (lib/redis.js) with `count` keys preloaded ({@link preloadRedis}). */
export async function startSeededRedis(count) {
  const redis = await startRedis();
  try {
    await preloadRedis(redis.url, count);
  } catch (err) {
    await redis.stop();
    throw err;
  }
  return redis;
}
