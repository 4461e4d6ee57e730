import { describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { ValueTooLargeError } from "../../core/errors.js";
import { CacheEngine, NAMESPACE_OVERHEAD_BYTES } from "../../server/engine/cache-engine.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";

const value = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

function engineWith(maxMemoryBytes: number, options: { durable?: FakeDurableTier; maxNamespaces?: number } = {}) {
  const clock = fakeClock();
  return new CacheEngine({
    durable: options.durable,
    codec: new ValueCodec({ compressionThreshold: 1024 }),
    maxKeyBytes: 1024,
    maxBatch: 1000,
    maxNamespaces: options.maxNamespaces ?? 1000,
    maxMemoryBytes,
    clock: clock.now,
    settingsFor: () => ({ defaultTtlMs: 0, ttlJitter: 0, memoryMaxEntries: 1_000_000, memoryMaxBytes: 1 << 30, policy: "lru" }),
  });
}

describe("one memory budget for the whole server", () => {
  it("holds across many namespaces, values and long keys, evicting the largest namespace first", async () => {
    const budget = 4 * 1024 * 1024;
    const engine = engineWith(budget);
    for (let round = 0; round < 40; round++) {
      for (let ns = 0; ns < 50; ns++) {
        const key = `${"k".repeat(500)}${round}`;
        await engine.set(`ns${ns}`, { key, value: value(800, round), contentType: "", ttlMs: 0 });
      }
      expect(engine.budget!.usedBytes).toBeLessThanOrEqual(budget);
    }
    await engine.setMany("big", Array.from({ length: 900 }, (_, i) => ({ key: `b${i}`, value: value(900, i), contentType: "", ttlMs: 0 })));
    expect(engine.budget!.usedBytes).toBeLessThanOrEqual(budget);
    expect(engine.budget!.evictions).toBeGreaterThan(0);
    const sizes = engine.stats().map((ns) => ns.tiers[0]!.bytes);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThan(budget / 4); // the big namespace gave back first
  });

  it("counts keys: long keys with small values cannot pass the budget", async () => {
    const budget = 16 * 1024 * 1024;
    const engine = engineWith(budget);
    for (let i = 0; i < 20_000; i++) await engine.set("keys", { key: `${i}:${"x".repeat(1000)}`, value: value(1), contentType: "", ttlMs: 0 });
    expect(engine.budget!.usedBytes).toBeLessThanOrEqual(budget);
    expect(engine.stats("keys")[0]!.tiers[0]!.entries).toBeLessThan(20_000);
  });

  it("counts namespace state and never refuses a read", async () => {
    const engine = engineWith(16 * 1024 * 1024, { maxNamespaces: 50 });
    for (let i = 0; i < 50; i++) await engine.set(`n${i}`, { key: "k", value: value(10), contentType: "", ttlMs: 0 });
    expect(engine.budget!.usedBytes).toBeGreaterThanOrEqual(50 * NAMESPACE_OVERHEAD_BYTES);
    for (let i = 0; i < 500; i++) expect(await engine.get(`other${i}`, "k")).toBeUndefined();
    expect(engine.namespaceCount).toBe(50);
  });
});

describe("responses within a byte budget", () => {
  it("GetMany fails before decompressing when its values would not fit one message", async () => {
    const engine = engineWith(1 << 30);
    const zeros = Array.from({ length: 40 }, (_, i) => ({ key: `z${i}`, value: value(1024 * 1024, 0), contentType: "", ttlMs: 0 }));
    await engine.setMany("zeros", zeros);
    const hits = await engine.lookupMany("zeros", zeros.map((z) => z.key));
    expect(hits.reduce((sum, h) => sum + h.envelope.byteLength, 0)).toBeLessThan(2 * 1024 * 1024); // stored small, compressed
    await expect(engine.getMany("zeros", zeros.map((z) => z.key), undefined, 16 * 1024 * 1024)).rejects.toThrow(ValueTooLargeError);
    await expect(engine.getMany("zeros", zeros.map((z) => z.key), undefined, 16 * 1024 * 1024)).rejects.toThrow(/max-message-bytes.*StreamGet/);
    expect(await engine.getMany("zeros", ["z1", "z2"], undefined, 16 * 1024 * 1024)).toHaveLength(2);
  });
});

describe("what no eviction can free", () => {
  it("never makes the budget evict the whole cache", async () => {
    const engine = engineWith(16 * 1024 * 1024, { maxNamespaces: 2000 });
    for (let i = 0; i < 1100; i++) await engine.set(`n${i}`, { key: "k", value: value(10), contentType: "", ttlMs: 0 });
    expect(await engine.get("n1099", "k")).toBeDefined();
    const held = engine.stats().filter((ns) => ns.tiers[0]!.entries > 0).length;
    expect(held).toBeGreaterThan(50);
  });

  it("keeps counting the reads of a namespace that had no room (past max-namespaces)", async () => {
    const engine = engineWith(1 << 30, { maxNamespaces: 1 });
    await engine.set("a", { key: "k", value: value(1), contentType: "", ttlMs: 0 });
    await Promise.all(Array.from({ length: 50 }, () => engine.get("z", "k")));
    await Promise.all(Array.from({ length: 50 }, () => engine.get("z", "k")));
    expect(engine.stats("z")[0]!.tiers[0]!.misses).toBe(100);
  });
});
