import { describe, expect, it } from "vitest";
import { MemoryTier } from "../../core/memory-tier.js";

describe("FIFO eviction", () => {
  it("evicts in write order and ignores reads", () => {
    const evicted: string[] = [];
    const tier = new MemoryTier<string>({ maxEntries: 3, policy: "fifo", onEvict: (key) => void evicted.push(key) });
    tier.set("a", "1");
    tier.set("b", "2");
    tier.set("c", "3");
    for (let i = 0; i < 5; i++) tier.get("a");
    tier.set("d", "4"); // evicts a despite the reads
    tier.set("b", "22"); // overwrite re-queues b: c d b
    tier.set("e", "5"); // evicts c
    expect(evicted).toEqual(["a", "c"]);
    expect([...tier.keys()].sort()).toEqual(["b", "d", "e"]);
  });

  it("never evicts the entry being written", () => {
    const tier = new MemoryTier<string>({ maxBytes: 30, policy: "fifo", entryOverheadBytes: 0, sizeOf: (v) => v.length });
    tier.set("a", "x".repeat(10));
    tier.set("b", "x".repeat(10));
    expect(tier.set("a", "x".repeat(25))).toBe(true); // grows the oldest entry
    expect([...tier.keys()]).toEqual(["a"]);
    expect(tier.bytes).toBe(25);
  });
});
