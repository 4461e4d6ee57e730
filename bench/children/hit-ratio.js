/**
 * Hit ratio on synthetic traces (a quality metric, not a speed): every cache
 * holds `capacity` entries; a request is a get, and a miss is followed by a
 * set (read-through). The first `warmupFraction` of each trace is not counted.
 *
 * Traces (deterministic, seeded): Zipf(skew) over `keySpace` keys, popularity
 * ranks mapped to keys by a seeded permutation; "scan" traces interleave
 * Zipf segments with one-pass sequential scans over keys never requested
 * again (each scan twice the cache's size).
 */
import { serveChild } from "../lib/child.js";
import { importDist } from "../lib/paths.js";
import { mulberry32, permutation, zipfSampler } from "../lib/prng.js";

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
    const { MemoryTier } = await importDist("core/memory-tier.js");
    const { LRUCache } = await import("lru-cache");
    const keys = Array.from({ length: keySpace }, (_, i) => `key:${i}`);
    const value = new Uint8Array(8);
    const makers = {
      lru: () => new MemoryTier({ maxEntries: capacity, policy: "lru" }),
      fifo: () => new MemoryTier({ maxEntries: capacity, policy: "fifo" }),
      lfu: () => new MemoryTier({ maxEntries: capacity, policy: "lfu" }),
      tinylfu: () => new MemoryTier({ maxEntries: capacity, policy: "tinylfu" }),
      "lru-cache": () => new LRUCache({ max: capacity }),
    };
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
}));
