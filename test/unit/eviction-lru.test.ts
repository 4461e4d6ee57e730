import { describe, expect, it } from "vitest";
import { MemoryTier, type EvictionCause } from "../../core/memory-tier.js";

describe("LRU eviction", () => {
  it("evicts the least recently used entry; reads and writes refresh", () => {
    const evicted: string[] = [];
    const tier = new MemoryTier<string>({ maxEntries: 3, onEvict: (key) => void evicted.push(key) });
    tier.set("a", "1");
    tier.set("b", "2");
    tier.set("c", "3");
    tier.get("a"); // order: b c a
    tier.set("d", "4"); // evicts b
    tier.set("c", "33"); // order: a d c
    tier.set("e", "5"); // evicts a
    expect(evicted).toEqual(["b", "a"]);
    expect([...tier.keys()].sort()).toEqual(["c", "d", "e"]);
    expect(tier.stats.evictionsCount).toBe(2);
  });

  it("peek and has do not refresh recency", () => {
    const tier = new MemoryTier<string>({ maxEntries: 2 });
    tier.set("a", "1");
    tier.set("b", "2");
    tier.peek("a");
    tier.has("a");
    tier.set("c", "3");
    expect(tier.has("a")).toBe(false);
  });

  it("evicts as many old entries as a large value needs, with cause size", () => {
    const causes: EvictionCause[] = [];
    const tier = new MemoryTier<Uint8Array>({
      maxBytes: 100,
      entryOverheadBytes: 0,
      onEvict: (_k, _v, cause) => void causes.push(cause),
    });
    for (const key of ["a", "b", "c", "d"]) tier.set(key, new Uint8Array(25));
    tier.get("a");
    expect(tier.set("big", new Uint8Array(60))).toBe(true); // 160 bytes: evicts b, c, d (LRU order)
    expect([...tier.keys()].sort()).toEqual(["a", "big"]);
    expect(causes).toEqual(["size", "size", "size"]);
    expect(tier.bytes).toBe(85);
  });

  it("prefers reclaiming expired entries over evicting live ones", () => {
    let now = 0;
    const tier = new MemoryTier<string>({ maxEntries: 2, clock: () => now });
    tier.set("live", "1");
    tier.set("ttl", "2", 10);
    tier.get("ttl"); // ttl is most recent; live is the LRU
    now = 10;
    // the per-set purge reclaims "ttl" before any eviction is needed
    tier.set("new", "3");
    expect([...tier.keys()].sort()).toEqual(["live", "new"]);
    expect(tier.stats.expirations).toBe(1);
    expect(tier.stats.evictionsCount).toBe(0);
  });
});
