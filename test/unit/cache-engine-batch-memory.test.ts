import { describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import type { EvictionPolicyName } from "../../core/memory-tier.js";
import { CacheEngine, type ValueToSet } from "../../server/engine/cache-engine.js";
import { fakeClock } from "../helpers/fake-clock.js";
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
