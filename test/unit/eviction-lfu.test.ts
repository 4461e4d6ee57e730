import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LFU_AGING_MIN_ENTRIES, LFU_AGING_USES_PER_ENTRY, LfuPolicy } from "../../core/eviction/lfu.js";
import { NO_SLOT } from "../../core/eviction/policy.js";
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

describe("LFU aging", () => {
  it("halves frequencies, so a former favourite left idle falls below an entry in steady use", () => {
    const evicted: string[] = [];
    const tier = new MemoryTier<string>({ maxEntries: 2, policy: "lfu", onEvict: (key) => void evicted.push(key) });
    // With fewer than 16 entries held, frequencies halve every 5 × 16 = 80 uses.
    tier.set("old", "v");
    for (let i = 0; i < 78; i++) tier.get("old"); // use 79: "old" at 79
    tier.set("new", "v"); // use 80: halving, "old" 39, "new" 0
    for (let i = 0; i < 70; i++) tier.get("new"); // "new" 70: fewer uses than "old" in all, more since the halving
    tier.set("third", "v");
    expect(evicted).toEqual(["old"]); // without aging "old" (79) would outrank "new" (71)
  });

  it("matches a reference LFU with aging over long random runs (policy level)", () => {
    const slotCount = 24;
    const opArb = fc.oneof(
      { weight: 3, arbitrary: fc.record({ op: fc.constant("insert" as const), slot: fc.nat({ max: slotCount - 1 }) }) },
      { weight: 6, arbitrary: fc.record({ op: fc.constantFrom("access" as const, "replace" as const), slot: fc.nat({ max: slotCount - 1 }) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant("remove" as const), slot: fc.nat({ max: slotCount - 1 }) }) },
      { weight: 2, arbitrary: fc.constant({ op: "evict" as const, slot: 0 }) },
    );
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 200, maxLength: 1500 }), (ops) => {
        const policy = new LfuPolicy(slotCount);
        const model = new Map<number, { freq: number; tick: number }>();
        let tick = 0;
        let uses = 0;
        const use = (): void => {
          if (++uses < LFU_AGING_USES_PER_ENTRY * Math.max(model.size, LFU_AGING_MIN_ENTRIES)) return;
          uses = 0;
          for (const entry of [...model.values()].sort((a, b) => a.freq - b.freq || a.tick - b.tick)) {
            entry.freq = Math.floor(entry.freq / 2);
            entry.tick = ++tick;
          }
        };
        for (const { op, slot } of ops) {
          const held = model.get(slot);
          if (op === "insert" && held === undefined) {
            policy.onInsert(slot);
            model.set(slot, { freq: 1, tick: ++tick });
            use();
          } else if ((op === "access" || op === "replace") && held !== undefined) {
            if (op === "access") policy.onAccess(slot);
            else policy.onReplace(slot);
            held.freq++;
            held.tick = ++tick;
            use();
          } else if (op === "remove" && held !== undefined) {
            policy.onRemove(slot);
            model.delete(slot);
          } else if (op === "evict") {
            let expected = NO_SLOT;
            let best: { freq: number; tick: number } | undefined;
            for (const [s, e] of model) {
              if (best === undefined || e.freq < best.freq || (e.freq === best.freq && e.tick < best.tick)) {
                expected = s;
                best = e;
              }
            }
            expect(policy.victim(NO_SLOT)).toBe(expected);
            if (expected !== NO_SLOT) {
              policy.onRemove(expected);
              model.delete(expected);
            }
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});
