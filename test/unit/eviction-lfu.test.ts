import { describe, expect, it } from "vitest";
import { MemoryTier } from "../../core/memory-tier.js";

describe("LFU eviction", () => {
  it("evicts the least frequently used entry", () => {
    const evicted: string[] = [];
    const tier = new MemoryTier<string>({ maxEntries: 3, policy: "lfu", onEvict: (key) => void evicted.push(key) });
    tier.set("a", "1");
    tier.set("b", "2");
    tier.set("c", "3");
    tier.get("a");
    tier.get("a");
    tier.get("b");
    tier.get("c");
    tier.get("c");
    tier.get("c");
    tier.set("d", "4"); // freqs a3 b2 c4 -> evicts b
    tier.set("e", "5"); // d has freq 1 -> evicts d
    expect(evicted).toEqual(["b", "d"]);
    expect([...tier.keys()].sort()).toEqual(["a", "c", "e"]);
  });

  it("breaks frequency ties by least recent use", () => {
    const evicted: string[] = [];
    const tier = new MemoryTier<string>({ maxEntries: 3, policy: "lfu", onEvict: (key) => void evicted.push(key) });
    tier.set("a", "1");
    tier.set("b", "2");
    tier.set("c", "3");
    tier.get("b");
    tier.get("a"); // a and b at freq 2, b reached it first; c at freq 1
    tier.get("c"); // all at 2: order b, a, c
    tier.set("d", "4");
    tier.get("d");
    tier.set("e", "5");
    expect(evicted).toEqual(["b", "a"]);
  });

  it("never evicts the entry being written even when it is the least frequent", () => {
    const tier = new MemoryTier<string>({ maxBytes: 30, policy: "lfu", entryOverheadBytes: 0, sizeOf: (v) => v.length });
    tier.set("hot", "x".repeat(10));
    for (let i = 0; i < 5; i++) tier.get("hot");
    tier.set("new", "x".repeat(10));
    expect(tier.set("big", "x".repeat(25))).toBe(true);
    expect([...tier.keys()]).toEqual(["big"]);
  });

  it("an overwrite counts as a use", () => {
    const tier = new MemoryTier<string>({ maxEntries: 2, policy: "lfu" });
    tier.set("a", "1");
    tier.set("b", "2");
    tier.set("a", "11");
    tier.set("c", "3");
    expect([...tier.keys()].sort()).toEqual(["a", "c"]);
  });
});
