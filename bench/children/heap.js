/**
 * Memory per entry (run with --expose-gc): fills one cache with `entries`
 * entries (keys made beforehand and kept alive, one shared value) and
 * reports (heap used + external memory) after full GCs, minus the same
 * before the cache existed, per entry. External memory counts because
 * typed-array backing stores (used by both MemoryTier and lru-cache) live
 * outside the JS heap.
 */
import { serveChild } from "../lib/child.js";
import { importDist } from "../lib/paths.js";

function settle() {
  for (let i = 0; i < 4; i++) globalThis.gc();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

await serveChild(async () => ({
  async measure({ impl, entries, policy = "lru" }) {
    if (typeof globalThis.gc !== "function") throw new Error("run with --expose-gc");
    const { MemoryTier } = await importDist("core/memory-tier.js");
    const { LRUCache } = await import("lru-cache");
    const keys = Array.from({ length: entries }, (_, i) => `key:${String(i).padStart(9, "0")}`);
    const value = new Uint8Array(64);
    const before = settle();
    let cache;
    if (impl === "tier") cache = new MemoryTier({ maxEntries: entries, policy });
    else if (impl === "lru-cache") cache = new LRUCache({ max: entries });
    else cache = new Map();
    for (let i = 0; i < entries; i++) cache.set(keys[i], value);
    const after = settle();
    if (cache.size !== entries) throw new Error(`${impl} holds ${cache.size} of ${entries}`);
    return { bytesPerEntry: (after - before) / entries, size: cache.size, keys: keys.length };
  },
}));
