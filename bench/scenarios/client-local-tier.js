/**
 * Client local-tier hit: a CacheClient read served by its in-process tier
 * (10k entries of 1 KiB, uniformly random keys), against an lru-cache get hit
 * on the same keys and values, in interleaved rounds in this process. Two
 * paths: the synchronous `getLocal` against `lru.get`, and `await
 * client.get()` against an awaited `lru.get`. For context, it also times a
 * plain `client.get()` answered by the server (no local tier), which is what a
 * local hit saves. The server runs in this process: on a local hit it is not
 * touched.
 */
import { LRUCache } from "lru-cache";
import { importDist } from "../lib/paths.js";
import { measured } from "../lib/report.js";
import { fmt, median } from "../lib/stats.js";

const NAME = "client-local-tier";
const ENTRIES = 10_000;

function syncRate(fn, keys, ms) {
  let ops = 0;
  let i = 0;
  let sink = 0;
  const end = performance.now() + ms;
  const start = performance.now();
  while (performance.now() < end) {
    for (let j = 0; j < 1000; j++) if (fn(keys[(i = (i * 7 + 13) % keys.length)]) !== undefined) sink++;
    ops += 1000;
  }
  if (sink === 0) throw new Error("no hits: the benchmark is not measuring hits");
  return ops / ((performance.now() - start) / 1000);
}

async function asyncRate(fn, keys, ms) {
  let ops = 0;
  let i = 0;
  let sink = 0;
  const end = performance.now() + ms;
  const start = performance.now();
  while (performance.now() < end) {
    for (let j = 0; j < 1000; j++) if ((await fn(keys[(i = (i * 7 + 13) % keys.length)])) !== undefined) sink++;
    ops += 1000;
  }
  if (sink === 0) throw new Error("no hits: the benchmark is not measuring hits");
  return ops / ((performance.now() - start) / 1000);
}

/** Lets the Watch stream's heartbeats through: a local tier that hears nothing for two heartbeats stops serving, by design. */
const breathe = () => new Promise((resolve) => setTimeout(resolve, 30));

export default {
  name: NAME,
  description: "CacheClient local-tier hit (getLocal and await get) vs lru-cache get; service Get latency for context",
  async run(ctx) {
    const { CacheClient } = await importDist("client/index.js");
    const { startServer, defaultConfig, silentLogger } = await importDist("server/index.js");
    const server = await startServer(defaultConfig({ port: 0, storage: "memory", logLevel: "error" }), { logger: silentLogger });
    // Quick (smoke) mode: fewer entries, so that filling the local tier key by key stays within CI's time.
    const entries = ctx.quick ? 1000 : ENTRIES;
    const local = new CacheClient({ address: server.address, localTier: { maxEntries: entries * 2 } });
    const remote = new CacheClient({ address: server.address });
    try {
      const keys = Array.from({ length: entries }, (_, i) => `key-${i}`);
      const value = { payload: "x".repeat(1000) };
      for (let i = 0; i < entries; i += 500) await local.setMany(keys.slice(i, i + 500).map((k) => [k, value]));
      for (let pass = 0; pass < 50 && keys.some((k) => local.getLocal(k) === undefined); pass++) {
        for (const key of keys) if (local.getLocal(key) === undefined) await local.get(key);
        await new Promise((r) => setTimeout(r, 20));
      }
      const missing = keys.filter((k) => local.getLocal(k) === undefined).length;
      if (missing > 0) throw new Error(`${missing} keys never reached the local tier`);
      const lru = new LRUCache({ max: entries });
      for (const key of keys) lru.set(key, value);

      const ms = ctx.quick ? 20 : 300;
      const rounds = ctx.rounds;
      const syncRatios = [];
      const asyncRatios = [];
      const rates = { lru: [], getLocal: [], lruAwait: [], get: [] };
      syncRate((k) => lru.get(k), keys, ms);
      await breathe();
      syncRate((k) => local.getLocal(k), keys, ms);
      for (let round = 0; round < rounds; round++) {
        await breathe();
        const a = syncRate((k) => lru.get(k), keys, ms);
        await breathe();
        const b = syncRate((k) => local.getLocal(k), keys, ms);
        await breathe();
        const b2 = syncRate((k) => local.getLocal(k), keys, ms);
        await breathe();
        const a2 = syncRate((k) => lru.get(k), keys, ms);
        rates.lru.push((a + a2) / 2);
        rates.getLocal.push((b + b2) / 2);
        syncRatios.push(((a + a2) / 2) / ((b + b2) / 2));
        const c = await asyncRate(async (k) => lru.get(k), keys, ms);
        const d = await asyncRate((k) => local.get(k), keys, ms);
        const d2 = await asyncRate((k) => local.get(k), keys, ms);
        const c2 = await asyncRate(async (k) => lru.get(k), keys, ms);
        rates.lruAwait.push((c + c2) / 2);
        rates.get.push((d + d2) / 2);
        asyncRatios.push(((d + d2) / 2) / ((c + c2) / 2));
      }

      const serviceCalls = ctx.quick ? 200 : 3000;
      for (let i = 0; i < Math.min(500, serviceCalls); i++) await remote.get(keys[i % entries]);
      const latencies = [];
      for (let i = 0; i < serviceCalls; i++) {
        const t0 = performance.now();
        await remote.get(keys[(i * 7) % entries]);
        latencies.push((performance.now() - t0) * 1000);
      }
      const serviceP50 = median(latencies);
      const localNs = 1e9 / median(rates.get);

      return {
        rows: [
          measured({
            scenario: NAME,
            subject: "CacheClient.getLocal (sync local-tier hit): time per op",
            baseline: "lru-cache get hit",
            ratios: syncRatios,
            goal: { op: "<=", value: 2 },
            context: `${fmt(median(rates.getLocal))} vs ${fmt(median(rates.lru))} ops/s`,
          }),
          measured({
            scenario: NAME,
            subject: "await CacheClient.get (local-tier hit): ops/s",
            baseline: "awaited lru-cache get hit",
            ratios: asyncRatios,
            goal: { op: ">=", value: 0.5 },
            context: `${fmt(median(rates.get))} vs ${fmt(median(rates.lruAwait))} ops/s; a local hit takes ${localNs.toFixed(0)} ns, a Get answered by the server p50 ${serviceP50.toFixed(0)} µs (${Math.round((serviceP50 * 1000) / localNs)}×)`,
          }),
        ],
      };
    } finally {
      local.close();
      remote.close();
      await server.shutdown();
    }
  },
};
