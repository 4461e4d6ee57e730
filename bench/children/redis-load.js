/**
 * Redis baselines with ioredis against the harness's own redis-server, and
 * the matching subjects when the project has them (RedisTier):
 *
 * - preload: SET bench:key:<i> to a 1 KiB value for `keys` keys
 * - get: GET latency sequentially and throughput at `concurrency` in flight,
 *   through raw ioredis getBuffer ("raw") or RedisTier.get ("tier")
 * - bulk: 100k keys by MGET of `chunk` keys / MSET of `chunk` keys / pipelined SET (… PX `ttlMs` when given) in `chunk`-sized pipelines
 * - bento: bentocache getOrSet (memory L1 over this Redis as L2) on a Zipf trace
 */
import { Redis } from "ioredis";
import { serveChild } from "../lib/child.js";
import { importDist } from "../lib/paths.js";
import { mulberry32, randomBytes, zipfSampler } from "../lib/prng.js";
import { latencySummary } from "../lib/stats.js";

async function loadRedisTier() {
  try {
    const mod = await importDist("server/tiers/redis-tier.js");
    return typeof mod.RedisTier?.connect === "function" ? mod.RedisTier : undefined;
  } catch {
    return undefined;
  }
}

await serveChild(async (config) => {
  const redis = new Redis(config.url, { lazyConnect: true });
  await redis.connect();
  const random = mulberry32(config.seed ?? 11);
  const value = randomBytes(config.valueBytes ?? 1024, random);
  const keyOf = (i) => `bench:key:${String(i).padStart(8, "0")}`;
  let keys = [];
  const order = Int32Array.from({ length: 1 << 16 }, () => random());
  let cursor = 0;
  let tier;

  async function closedLoop(call, concurrency, durationMs, maxCalls) {
    const samples = new Float64Array(Math.max(1, Math.min(1 << 21, maxCalls)));
    let calls = 0;
    const start = performance.now();
    const end = start + durationMs;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (calls < maxCalls && performance.now() < end) {
          const i = calls++ % samples.length;
          const t0 = performance.now();
          await call();
          samples[i] = (performance.now() - t0) * 1000;
        }
      }),
    );
    const elapsedMs = performance.now() - start;
    return { calls, elapsedMs, opsPerSec: (calls / elapsedMs) * 1000, ...latencySummary(samples, Math.min(calls, samples.length)) };
  }

  return {
    info: { redisTier: (await loadRedisTier()) !== undefined },
    async preload({ count }) {
      keys = Array.from({ length: count }, (_, i) => keyOf(i));
      for (let i = 0; i < count; i += 1000) {
        const pipeline = redis.pipeline();
        for (const key of keys.slice(i, i + 1000)) pipeline.set(key, value);
        await pipeline.exec();
      }
      for (let i = 0; i < order.length; i++) order[i] = Math.floor(order[i] * count) % count;
      return count;
    },
    async get({ via = "raw", concurrency = 1, durationMs = 1000, maxCalls = Number.MAX_SAFE_INTEGER }) {
      const call = via === "raw" ? () => redis.getBuffer(keys[order[cursor++ & 0xffff]]) : () => tier.get("bench", keys[order[cursor++ & 0xffff]]);
      return closedLoop(call, concurrency, durationMs, maxCalls);
    },
    async openTier() {
      const RedisTier = await loadRedisTier();
      if (!RedisTier) return false;
      tier = await RedisTier.connect({ url: config.url });
      const { ValueCodec } = await importDist("core/codec.js");
      const envelope = new ValueCodec().encode(value, "application/octet-stream", 0);
      for (let i = 0; i < keys.length; i += 1000) {
        await tier.setMany("bench", keys.slice(i, i + 1000).map((key) => ({ key, envelope, expiresAt: 0 })));
      }
      return true;
    },
    async bulk({ op, total, chunk, ttlMs = 0 }) {
      const names = Array.from({ length: total }, (_, i) => `bench:bulk:${i}`);
      const t0 = performance.now();
      const work = [];
      for (let i = 0; i < total; i += chunk) {
        const part = names.slice(i, i + chunk);
        if (op === "mget") work.push(redis.mgetBuffer(part));
        else if (op === "mset") work.push(redis.mset(part.flatMap((name) => [name, value])));
        else {
          const pipeline = redis.pipeline();
          for (const name of part) if (ttlMs > 0) pipeline.set(name, value, "PX", ttlMs);
          else pipeline.set(name, value);
          work.push(pipeline.exec());
        }
      }
      const results = await Promise.all(work);
      const ms = performance.now() - t0;
      if (op === "mget") {
        const found = results.reduce((n, r) => n + r.filter((v) => v !== null).length, 0);
        if (found !== total) throw new Error(`MGET found ${found} of ${total}`);
      }
      return { ms, keysPerSec: (total / ms) * 1000 };
    },
    async bento({ requests, keySpace, skew, l1Items, prefix = "bento" }) {
      const { BentoCache, bentostore } = await import("bentocache");
      const { memoryDriver } = await import("bentocache/drivers/memory");
      const { redisDriver } = await import("bentocache/drivers/redis");
      const bento = new BentoCache({
        default: "tiered",
        stores: {
          tiered: bentostore()
            .useL1Layer(memoryDriver({ maxItems: l1Items }))
            .useL2Layer(redisDriver({ connection: { host: new URL(config.url).hostname, port: Number(new URL(config.url).port) } })),
        },
      });
      const sample = zipfSampler(keySpace, skew, mulberry32(99));
      const trace = Array.from({ length: requests }, () => `${prefix}:${sample()}`);
      const payload = { id: 1, body: "x".repeat(1000) };
      let loads = 0;
      const factory = async () => {
        loads++;
        return payload;
      };
      // Warm-up on keys of another prefix, so the measured trace starts cold (empty L1 and L2).
      for (let i = 0; i < Math.min(2000, requests); i++) await bento.getOrSet({ key: `warm:${trace[i]}`, factory, ttl: "1h" });
      loads = 0;
      const t0 = performance.now();
      for (let i = 0; i < requests; i++) await bento.getOrSet({ key: trace[i], factory, ttl: "1h" });
      const ms = performance.now() - t0;
      await bento.disconnectAll();
      return { opsPerSec: (requests / ms) * 1000, loads, requests };
    },
    async stop() {
      await tier?.close?.();
      await redis.quit();
    },
  };
});
