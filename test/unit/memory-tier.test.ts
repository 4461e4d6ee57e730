import { describe, expect, it } from "vitest";
import {
  DEFAULT_ENTRY_OVERHEAD_BYTES,
  MAX_ENTRY_BYTES,
  MemoryTier,
  type EvictionCause,
  type EvictionPolicyName,
  type MemoryTierOptions,
} from "../../core/memory-tier.js";

const POLICIES: readonly EvictionPolicyName[] = ["lru", "fifo", "lfu", "tinylfu"];

/** A clock the test moves by hand. */
function fakeClock(start = 1_000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return { now: () => time, advance: (ms) => void (time += ms) };
}

function recorder(): { events: [string, string, EvictionCause][]; onEvict: (k: string, v: string, c: EvictionCause) => void } {
  const events: [string, string, EvictionCause][] = [];
  return { events, onEvict: (k, v, c) => void events.push([k, v, c]) };
}

describe("MemoryTier options", () => {
  it("rejects an unbounded tier in the type and at runtime", () => {
    // @ts-expect-error at least one bound is required
    const unbounded: MemoryTierOptions<string> = { policy: "lru" };
    expect(() => new MemoryTier(unbounded)).toThrow(/maxEntries or maxBytes/);
  });

  it.each([0, -1, 1.5, Number.NaN, Infinity])("rejects maxEntries %s with a RangeError naming it", (bad) => {
    expect(() => new MemoryTier({ maxEntries: bad })).toThrow(RangeError);
    expect(() => new MemoryTier({ maxEntries: bad })).toThrow(/maxEntries/);
  });

  it.each([0, -5, 2.5])("rejects maxBytes %s with a RangeError naming it", (bad) => {
    expect(() => new MemoryTier({ maxBytes: bad })).toThrow(/maxBytes/);
  });

  it("rounds sizes up and refuses entries beyond MAX_ENTRY_BYTES", () => {
    const tier = new MemoryTier<number>({ maxBytes: 2 ** 40, sizeOf: (n) => n, entryOverheadBytes: 0 });
    expect(tier.set("a", 1.2)).toBe(true);
    expect(tier.bytes).toBe(2);
    expect(tier.set("b", MAX_ENTRY_BYTES + 1)).toBe(false);
    expect(tier.stats.rejections).toBe(1);
    expect(() => tier.set("c", -1)).toThrow(/sizeOf/);
    expect(tier.bytes).toBe(2);
  });

  it("rejects a bad policy and overhead", () => {
    // @ts-expect-error not a policy name
    expect(() => new MemoryTier({ maxEntries: 1, policy: "random" })).toThrow(/policy/);
    expect(() => new MemoryTier({ maxEntries: 1, entryOverheadBytes: -1 })).toThrow(/entryOverheadBytes/);
  });

  it("defaults to LRU, the documented overhead and byteLength sizing", () => {
    const tier = new MemoryTier<Uint8Array | string>({ maxBytes: 10_000 });
    expect(tier.policy).toBe("lru");
    tier.set("buf", new Uint8Array(100));
    tier.set("str", "no byteLength");
    expect(tier.bytes).toBe(100 + 2 * DEFAULT_ENTRY_OVERHEAD_BYTES);
    expect(tier.maxEntries).toBe(Infinity);
  });
});

describe.each(POLICIES)("MemoryTier basics (%s)", (policy) => {
  const make = (extra: Partial<MemoryTierOptions<string>> = {}): MemoryTier<string> =>
    new MemoryTier<string>({ maxEntries: 100, policy, sizeOf: (v) => v.length, entryOverheadBytes: 10, ...extra });

  it("gets, peeks, replaces and deletes with exact byte accounting", () => {
    const tier = make();
    expect(tier.set("a", "12345")).toBe(true);
    expect(tier.get("a")).toBe("12345");
    expect(tier.peek("a")).toBe("12345");
    expect(tier.has("a")).toBe(true);
    expect(tier.bytes).toBe(15);
    expect(tier.set("a", "1")).toBe(true);
    expect(tier.bytes).toBe(11);
    expect(tier.size).toBe(1);
    expect(tier.delete("a")).toBe(true);
    expect(tier.delete("a")).toBe(false);
    expect(tier.bytes).toBe(0);
    expect(tier.get("a")).toBeUndefined();
    expect(tier.stats).toMatchObject({ hits: 1, misses: 1, sets: 2, deletes: 1 });
  });

  it("peek and has count nothing", () => {
    const tier = make();
    tier.set("a", "x");
    tier.peek("a");
    tier.has("a");
    tier.peek("zz");
    expect(tier.stats.hits + tier.stats.misses).toBe(0);
  });

  it("rejects an entry larger than maxBytes and drops the old value", () => {
    const tier = make({ maxBytes: 50 });
    expect(tier.set("k", "small")).toBe(true);
    expect(tier.set("k", "x".repeat(41))).toBe(false);
    expect(tier.has("k")).toBe(false);
    expect(tier.bytes).toBe(0);
    expect(tier.stats.rejections).toBe(1);
    expect(tier.set("k", "x".repeat(40))).toBe(true);
    expect(tier.bytes).toBe(50);
  });

  it("never exceeds the byte bound", () => {
    const { events, onEvict } = recorder();
    const tier = make({ maxBytes: 100, onEvict });
    for (let i = 0; i < 50; i++) {
      tier.set(`k${i}`, "v".repeat(i % 30));
      expect(tier.bytes).toBeLessThanOrEqual(100);
    }
    expect(events.every(([, , cause]) => cause === "size")).toBe(true);
    expect(tier.stats.evictionsSize).toBe(events.length);
  });

  it("expires entries by the injected clock without returning them", () => {
    const clock = fakeClock();
    const { events, onEvict } = recorder();
    const tier = make({ clock: clock.now, onEvict });
    tier.set("short", "s", clock.now() + 10);
    tier.set("long", "l", clock.now() + 1_000 * 60 * 60 * 24 * 90); // ~3 months
    tier.set("never", "n");
    expect(tier.getEntry("short")).toEqual({ value: "s", expiresAt: 1_010 });
    expect(tier.getEntry("never")).toEqual({ value: "n", expiresAt: 0 });
    clock.advance(10);
    expect(tier.peek("short")).toBeUndefined();
    expect(tier.has("short")).toBe(false);
    expect([...tier.keys()].sort()).toEqual(["long", "never"]);
    expect(tier.size).toBe(3); // not yet reclaimed
    expect(tier.get("short")).toBeUndefined();
    expect(tier.size).toBe(2);
    expect(events).toEqual([["short", "s", "expired"]]);
    expect(tier.stats.expirations).toBe(1);
    expect(tier.get("long")).toBe("l");
  });

  it("refuses a set that is already expired, removing the old value", () => {
    const clock = fakeClock();
    const tier = make({ clock: clock.now });
    tier.set("a", "old");
    expect(tier.set("a", "new", clock.now())).toBe(false);
    expect(tier.has("a")).toBe(false);
    expect(() => tier.set("a", "x", -1)).toThrow(RangeError);
  });

  it("touch moves expiry and purgeExpired reclaims only what expired", () => {
    const clock = fakeClock();
    const { events, onEvict } = recorder();
    const tier = make({ clock: clock.now, onEvict });
    for (let i = 0; i < 10; i++) tier.set(`k${i}`, "v", clock.now() + 10 + i);
    expect(tier.touch("k0", 0)).toBe(true);
    expect(tier.touch("missing", 5)).toBe(false);
    clock.advance(15); // k1..k5 expired
    expect(tier.purgeExpired(2)).toBe(2);
    expect(events.map(([k]) => k)).toEqual(["k1", "k2"]);
    expect(tier.purgeExpired()).toBe(3);
    expect(tier.purgeExpired()).toBe(0);
    expect(tier.size).toBe(5);
    expect(tier.touch("k3", clock.now() + 100)).toBe(false);
    expect(tier.getEntry("k0")?.expiresAt).toBe(0);
  });

  it("reclaims a few expired entries on each set", () => {
    const clock = fakeClock();
    const tier = make({ clock: clock.now });
    for (let i = 0; i < 6; i++) tier.set(`k${i}`, "v", clock.now() + 1);
    clock.advance(1);
    tier.set("x", "v");
    expect(tier.size).toBe(5); // 6 + 1 - EXPIRED_PURGE_PER_SET
    expect(tier.stats.expirations).toBe(2);
  });

  it("does not call onEvict for delete, replace or clear", () => {
    const { events, onEvict } = recorder();
    const tier = make({ onEvict });
    tier.set("a", "1");
    tier.set("a", "2");
    tier.set("b", "1");
    tier.delete("b");
    tier.clear();
    expect(events).toEqual([]);
    expect(tier.size).toBe(0);
    expect(tier.bytes).toBe(0);
    expect(tier.set("c", "3")).toBe(true);
    expect(tier.get("c")).toBe("3");
  });

  it("lets onEvict call back into the tier", () => {
    let tier: MemoryTier<string> | undefined = undefined;
    const seen: string[] = [];
    tier = make({
      maxEntries: 2,
      onEvict: (key) => {
        seen.push(key);
        tier?.delete("nonexistent");
        expect(tier?.size).toBeLessThanOrEqual(2);
      },
    });
    for (const key of ["a", "b", "c", "d"]) tier.set(key, key);
    expect(seen.length).toBeGreaterThan(0);
  });

  it("grows past its initial slot arrays and reuses freed slots", () => {
    const tier = make({ maxEntries: 2_000 });
    for (let i = 0; i < 5_000; i++) tier.set(`k${i}`, "v");
    expect(tier.size).toBe(2_000);
    expect(tier.bytes).toBe(2_000 * 11);
    let found = 0;
    for (const key of tier.keys()) if (tier.peek(key) === "v") found++;
    expect(found).toBe(2_000);
  });
});
