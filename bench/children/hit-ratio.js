/**
 * Hit ratio (a quality metric, not a speed): a request is a get, and a miss
 * is followed by a set (read-through).
 *
 * `run`: synthetic traces; every cache holds `capacity` entries, and the
 * first `warmupFraction` of each trace is not counted. Traces
 * (deterministic, seeded): Zipf(skew) over `keySpace` keys, popularity
 * ranks mapped to keys by a seeded permutation; "scan" traces interleave
 * Zipf segments with one-pass sequential scans over keys never requested
 * again (each scan twice the cache's size).
 *
 * `runTraces`: real traces read from decompressed files (lib/traces.js),
 * each at several sizes in entries; cold start, every request counted, as
 * the published figures are.
 */
import { join } from "node:path";
import { serveChild } from "../lib/child.js";
import { importDist } from "../lib/paths.js";
import { mulberry32, permutation, zipfSampler } from "../lib/prng.js";
import { readTrace } from "../lib/traces.js";

/** The caches compared, by column name, for a capacity in entries. */
async function cacheMakers() {
  const { MemoryTier } = await importDist("core/memory-tier.js");
  const { LRUCache } = await import("lru-cache");
  const tier = (policy) => (capacity) => new MemoryTier({ maxEntries: capacity, policy });
  return {
    lru: tier("lru"),
    fifo: tier("fifo"),
    lfu: tier("lfu"),
    tinylfu: tier("tinylfu"),
    "lru-cache": (capacity) => new LRUCache({ max: capacity }),
  };
}

function buildTrace({ skew, length, keySpace, scan, seed }, keys) {
  const random = mulberry32(seed);
  const rankToKey = permutation(keySpace, mulberry32(seed ^ 0x9e3779b9));
  const sample = zipfSampler(keySpace, skew, random);
  const trace = new Array(length);
  let scanned = 0;
  let scanRequests = 0;
  for (let i = 0; i < length; ) {
    const segment = scan ? Math.min(scan.every, length - i) : length;
    for (let k = 0; k < segment; k++) trace[i++] = keys[rankToKey[sample()]];
    if (scan) {
      for (let k = 0; k < scan.length && i < length; k++, scanRequests++) trace[i++] = `scan:${scanned++}`;
    }
  }
  return { trace, scanRequests };
}

await serveChild(async () => ({
  async run({ traces, capacity, keySpace, warmupFraction }) {
    const keys = Array.from({ length: keySpace }, (_, i) => `key:${i}`);
    const value = new Uint8Array(8);
    const makers = Object.fromEntries(Object.entries(await cacheMakers()).map(([name, make]) => [name, () => make(capacity)]));
    const rows = [];
    for (const spec of traces) {
      const t0 = performance.now();
      const { trace, scanRequests } = buildTrace({ ...spec, keySpace }, keys);
      const counted = trace.length - Math.floor(trace.length * warmupFraction);
      const start = trace.length - counted;
      const hitRatio = {};
      for (const [name, make] of Object.entries(makers)) {
        const cache = make();
        let hits = 0;
        for (let i = 0; i < trace.length; i++) {
          const key = trace[i];
          if (cache.get(key) !== undefined) {
            if (i >= start) hits++;
          } else cache.set(key, value);
        }
        hitRatio[name] = hits / counted;
      }
      rows.push({ trace: spec.name, requests: trace.length, counted, scanRequests, hitRatio, seconds: (performance.now() - t0) / 1000 });
    }
    return { columns: Object.keys(makers), rows };
  },

  /** `cases`: [{ file (relative to `dir`), sizes: [entries…] }]; one row per file and size. */
  async runTraces({ dir, cases }) {
    const makers = await cacheMakers();
    const value = new Uint8Array(8);
    const rows = [];
    for (const { file, sizes } of cases) {
      const { keys, requests } = readTrace(join(dir, file));
      for (const size of sizes) {
        const t0 = performance.now();
        const hitRatio = {};
        for (const [name, make] of Object.entries(makers)) {
          const cache = make(size);
          let hits = 0;
          for (let i = 0; i < requests.length; i++) {
            const key = keys[requests[i]];
            if (cache.get(key) !== undefined) hits++;
            else cache.set(key, value);
          }
          hitRatio[name] = hits / requests.length;
        }
        rows.push({ file, size, requests: requests.length, distinct: keys.length, hitRatio, seconds: (performance.now() - t0) / 1000 });
      }
    }
    return { columns: Object.keys(makers), rows };
  },
}));
