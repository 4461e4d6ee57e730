import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { MemoryTier, type EvictionPolicyName } from "../../core/memory-tier.js";
import { CacheEngine, type FoundValue, type ValueToSet } from "../../server/engine/cache-engine.js";
import { fakeClock, type FakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";

/** An engine whose memory tier holds two entries, over a durable tier or alone. */
function engineWith(durable: FakeDurableTier | undefined, policy: EvictionPolicyName = "lru"): CacheEngine {
  return new CacheEngine({
    durable,
    codec: new ValueCodec(),
    maxKeyBytes: 64,
    maxBatch: 100,
    maxNamespaces: 10,
    clock: fakeClock().now,
    settingsFor: () => ({ defaultTtlMs: 0, ttlJitter: 0, memoryMaxEntries: 2, memoryMaxBytes: 1 << 20, policy }),
  });
}

const entry = (key: string, text: string): ValueToSet => ({ key, value: new TextEncoder().encode(text), contentType: "text/plain", ttlMs: 0 });
const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : new TextDecoder().decode(value));
const memoryOf = (engine: CacheEngine) => engine.stats("ns")[0]!.tiers.find((t) => t.tier === "memory")!;

describe("a batch longer than the memory tier", () => {
  it("stores in memory only what the tier would keep, and no older copy of the keys it skips stays served", async () => {
    const clock = fakeClock();
    const durable = new FakeDurableTier(clock.now);
    const engine = engineWith(durable);
    await engine.setMany("ns", [entry("a", "old a"), entry("z", "old z")]);
    expect(text((await engine.get("ns", "a"))?.value)).toBe("old a");

    await engine.setMany("ns", [entry("a", "new a"), entry("b", "b"), entry("a", "newer a"), entry("c", "c"), entry("d", "d")]);
    const memory = memoryOf(engine);
    expect(memory.entries).toBe(2);
    expect(memory.sets).toBe(2 + 2); // the first batch's two, then only c and d
    for (const [key, value] of [["a", "newer a"], ["b", "b"], ["c", "c"], ["d", "d"], ["z", "old z"]]) {
      expect(text((await engine.get("ns", key!))?.value)).toBe(value);
    }
  });

  it("memory-only: serves the same keys as setting every entry in turn would", async () => {
    for (const policy of ["lru", "fifo", "lfu", "tinylfu"] as const) {
      const engine = engineWith(undefined, policy);
      await engine.setMany("ns", [entry("a", "1"), entry("b", "2"), entry("c", "3"), entry("a", "4"), entry("d", "5")]);
      const found = await engine.getMany("ns", ["a", "b", "c", "d"]);
      if (policy === "lru" || policy === "fifo") expect(found.map((f) => [f.key, text(f.value)])).toEqual([["a", "4"], ["d", "5"]]);
      else expect(found.length).toBeLessThanOrEqual(2);
    }
  });

  it("a read-through of more keys than the tier holds answers every key and promotes only the last ones it keeps", async () => {
    const clock = fakeClock();
    const durable = new FakeDurableTier(clock.now);
    const writer = engineWith(durable);
    await writer.setMany("ns", ["a", "b", "c", "d", "e"].map((k) => entry(k, `v${k}`)));
    const reader = engineWith(durable);
    const found = await reader.getMany("ns", ["a", "b", "c", "d", "e"]);
    expect(found.map((f) => [f.key, text(f.value), f.tier])).toEqual(["a", "b", "c", "d", "e"].map((k) => [k, `v${k}`, durable.name]));
    const memory = memoryOf(reader);
    expect([memory.entries, memory.sets, memory.evictionsCount]).toEqual([2, 2, 0]);
    expect((await reader.get("ns", "e"))?.tier).toBe("memory");
    expect((await reader.get("ns", "a"))?.tier).toBe(durable.name);
  });
});

/** One step of the differential run below. */
type Step =
  | { op: "setMany"; entries: { key: string; ttlMs: number; graceMs: number; size: number }[] }
  | { op: "getMany"; keys: string[] }
  | { op: "get" | "delete"; key: string }
  | { op: "touch"; key: string; ttlMs: number }
  | { op: "advance"; ms: number };

const keyArb = fc.constantFrom("a", "b", "c", "d", "e");
const ttlArb = fc.constantFrom(0, 1, 500, 999, 1000, 1001, 1500, 5000);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    op: fc.constant("setMany" as const),
    entries: fc.array(fc.record({ key: keyArb, ttlMs: ttlArb, graceMs: fc.constantFrom(0, 0, 2000), size: fc.integer({ min: 0, max: 300 }) }), { minLength: 1, maxLength: 8 }),
  }),
  fc.record({ op: fc.constant("getMany" as const), keys: fc.uniqueArray(keyArb, { minLength: 1, maxLength: 5 }) }),
  fc.record({ op: fc.constantFrom("get" as const, "delete" as const), key: keyArb }),
  fc.record({ op: fc.constant("touch" as const), key: keyArb, ttlMs: ttlArb }),
  fc.record({ op: fc.constant("advance" as const), ms: fc.constantFrom(1, 100, 600, 1001, 3000) }),
);

const shown = (found: FoundValue | undefined) => found && [found.key, text(found.value), found.tier, found.ttlRemainingMs, found.stale];

async function runStep(engine: CacheEngine, clock: FakeClock, step: Step, serial: number): Promise<unknown> {
  try {
    switch (step.op) {
      case "setMany":
        return await engine.setMany(
          "ns",
          step.entries.map((e) => ({ key: e.key, value: new TextEncoder().encode(`${e.key}#${serial}#`.padEnd(e.size + 8, "x")), contentType: "text/plain", ttlMs: e.ttlMs, graceMs: e.graceMs })),
        );
      case "getMany":
        return (await engine.getMany("ns", step.keys)).map(shown);
      case "get":
        return shown(await engine.get("ns", step.key, undefined, true));
      case "delete":
        return await engine.delete("ns", step.key);
      case "touch":
        return await engine.touch("ns", step.key, step.ttlMs);
      case "advance":
        clock.advance(step.ms);
        return null;
    }
  } catch (err) {
    return `error ${(err as Error).message}`;
  }
}

describe("the batch shortcut against setting every entry (the engine before it)", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("answers every call alike and leaves memory holding the same entries and bytes (LRU and FIFO, with and without a durable tier)", async () => {
    const real = MemoryTier.prototype.firstSurvivor;
    let shortcut = true;
    let taken = 0;
    vi.spyOn(MemoryTier.prototype, "firstSurvivor").mockImplementation(function (this: MemoryTier<unknown>, ...args) {
      if (!shortcut) return 0;
      const from = real.apply(this, args);
      if (from > 0) taken++;
      return from;
    });
    const engineOf = (clock: FakeClock, durable: boolean, maxEntries: number, maxBytes: number, policy: EvictionPolicyName) =>
      new CacheEngine({
        durable: durable ? new FakeDurableTier(clock.now) : undefined,
        codec: new ValueCodec(),
        maxKeyBytes: 64,
        maxBatch: 100,
        maxNamespaces: 10,
        clock: clock.now,
        settingsFor: () => ({ defaultTtlMs: 0, ttlJitter: 0, memoryMaxEntries: maxEntries, memoryMaxBytes: maxBytes, policy }),
      });
    let serial = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom(400, 1024, 1 << 20),
        fc.constantFrom<EvictionPolicyName>("lru", "fifo"),
        fc.boolean(),
        fc.array(stepArb, { maxLength: 30 }),
        async (maxEntries, maxBytes, policy, durable, steps) => {
          const [clockA, clockB] = [fakeClock(), fakeClock()];
          const [withShortcut, without] = [engineOf(clockA, durable, maxEntries, maxBytes, policy), engineOf(clockB, durable, maxEntries, maxBytes, policy)];
          for (const step of steps) {
            serial++;
            shortcut = true;
            const a = await runStep(withShortcut, clockA, step, serial);
            shortcut = false;
            const b = await runStep(without, clockB, step, serial);
            expect(a, JSON.stringify(step)).toEqual(b);
            const [ma, mb] = [memoryOf(withShortcut), memoryOf(without)];
            expect([ma.entries, ma.bytes], JSON.stringify(step)).toEqual([mb.entries, mb.bytes]);
          }
        },
      ),
      { numRuns: 400 },
    );
    expect(taken).toBeGreaterThan(0);
  });
});
