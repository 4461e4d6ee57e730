import { describe, expect, it } from "vitest";
import { ShadowCache } from "../../core/eviction/shadow-cache.js";
import { tinyLfuHash } from "../../core/eviction/window-tinylfu.js";
import { MemoryTier, type EvictionPolicyName } from "../../core/memory-tier.js";

/** Requests for recently introduced keys: a new key every 3 requests, ages exponential with mean 0.4 × capacity. */
function recencyTrace(length: number, capacity: number): string[] {
  let x = 7;
  const next = (): number => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
  return Array.from({ length }, (_, t) => `k${Math.max(0, Math.floor(t / 3) - Math.floor(-Math.log(1 - next()) * capacity * 0.4))}`);
}

/** Hit ratio of a read-through cache (a miss is followed by a set) over `trace`. */
function hitRatio(trace: readonly string[], request: (key: string) => boolean): number {
  return trace.filter(request).length / trace.length;
}

function tierRequest(policy: EvictionPolicyName, maxEntries: number): (key: string) => boolean {
  const tier = new MemoryTier<number>({ maxEntries, policy });
  return (key) => tier.get(key) !== undefined || (tier.set(key, 1), false);
}

function hotSetSurvivors(policy: EvictionPolicyName): number {
  const tier = new MemoryTier<string>({ maxEntries: 200, policy });
  const hot = Array.from({ length: 100 }, (_, i) => `hot${i}`);
  for (let round = 0; round < 5; round++) {
    for (const key of hot) if (tier.get(key) === undefined) tier.set(key, key);
  }
  for (let i = 0; i < 5_000; i++) {
    const key = `scan${i}`;
    if (tier.get(key) === undefined) tier.set(key, key);
  }
  return hot.filter((key) => tier.has(key)).length;
}

describe("TinyLFU eviction", () => {
  it("keeps a hot set through a one-pass scan that flushes LRU", () => {
    expect(hotSetSurvivors("lru")).toBe(0);
    expect(hotSetSurvivors("fifo")).toBe(0);
    expect(hotSetSurvivors("tinylfu")).toBeGreaterThanOrEqual(95);
  });

  it("admits a new key once it becomes more frequent than the main space's victim", () => {
    const tier = new MemoryTier<string>({ maxEntries: 100, policy: "tinylfu" });
    for (let i = 0; i < 100; i++) tier.set(`k${i}`, "v");
    for (let i = 0; i < 100; i++) tier.get(`k${i}`);
    // "fresh" is written repeatedly; each write raises its sketch frequency
    let admittedAfter = -1;
    for (let attempt = 1; attempt <= 10 && admittedAfter < 0; attempt++) {
      tier.set("fresh", "v");
      tier.set(`filler${attempt}`, "v"); // pushes "fresh" out of the window
      if (tier.has("fresh")) admittedAfter = attempt;
    }
    expect(admittedAfter).toBeGreaterThan(1); // refused while its frequency is no higher than the victim's
    expect(admittedAfter).toBeLessThanOrEqual(4);
    expect(tier.size).toBe(100);
  });

  it("refuses a write whose entry loses admission and leaves no stale value", () => {
    const tier = new MemoryTier<Uint8Array>({ maxBytes: 1_000, policy: "tinylfu", entryOverheadBytes: 0 });
    for (let i = 0; i < 10; i++) tier.set(`k${i}`, new Uint8Array(100));
    for (let r = 0; r < 3; r++) for (let i = 0; i < 10; i++) tier.get(`k${i}`);
    // 100 bytes > 1% of maxBytes, so the new entry goes straight to admission and loses
    expect(tier.set("k0", new Uint8Array(50))).toBe(true); // existing key: updated in place
    expect(tier.set("cold", new Uint8Array(100))).toBe(false);
    expect(tier.has("cold")).toBe(false);
    expect(tier.stats.rejections).toBe(1);
    expect(tier.bytes).toBeLessThanOrEqual(1_000);
  });

  it("grows its window on a recency-biased workload: close to LRU, where a fixed 1% window falls far below", () => {
    const trace = recencyTrace(100_000, 200);
    const lru = hitRatio(trace, tierRequest("lru", 200));
    const fixed = new ShadowCache({ maxEntries: 200, maxBytes: Infinity }, 0.01, 200);
    expect(hitRatio(trace, (key) => fixed.request(tinyLfuHash(key), 1))).toBeLessThan(lru - 0.3);
    expect(hitRatio(trace, tierRequest("tinylfu", 200))).toBeGreaterThan(lru - 0.02);
  });

  it("keeps most of a loop slightly larger than the cache, where LRU keeps nothing", () => {
    const loop = Array.from({ length: 60_000 }, (_, i) => `k${i % 600}`);
    expect(hitRatio(loop, tierRequest("lru", 500))).toBe(0);
    expect(hitRatio(loop, tierRequest("tinylfu", 500))).toBeGreaterThan(0.75);
  });

  it("a large entry must outweigh all the small entries it would displace together", () => {
    const tier = new MemoryTier<Uint8Array>({ maxBytes: 1_000, policy: "tinylfu", entryOverheadBytes: 0 });
    for (let i = 0; i < 20; i++) tier.set(`small${i}`, new Uint8Array(40));
    for (let r = 0; r < 3; r++) for (let i = 0; i < 20; i++) tier.get(`small${i}`); // each small: frequency 4
    // "big" needs 5 smalls' room (frequency 20 together); each attempt raises its own frequency by one.
    for (let attempt = 0; attempt < 12; attempt++) expect(tier.set("big", new Uint8Array(400))).toBe(false);
    expect(Array.from({ length: 20 }, (_, i) => tier.has(`small${i}`)).every(Boolean)).toBe(true);
  });

  it("a large entry more popular than all the entries it displaces together is admitted", () => {
    const tier = new MemoryTier<Uint8Array>({ maxBytes: 1_000, policy: "tinylfu", entryOverheadBytes: 0 });
    for (let i = 0; i < 20; i++) tier.set(`small${i}`, new Uint8Array(40));
    for (let i = 0; i < 20; i++) tier.get(`small${i}`); // each small: frequency 1 (the first occurrence is not counted)
    let admittedAfter = 0;
    for (let attempt = 1; attempt <= 16 && admittedAfter === 0; attempt++) {
      if (tier.set("big", new Uint8Array(400))) admittedAfter = attempt;
    }
    // Not before its frequency (attempts - 1) beats the 5 victims of frequency 1 it needs room from together.
    expect(admittedAfter).toBeGreaterThanOrEqual(7);
    expect(tier.has("big")).toBe(true);
    expect(tier.bytes).toBeLessThanOrEqual(1_000);
  });

  it("keeps exact accounting when one write triggers several admission contests", () => {
    const tier = new MemoryTier<Uint8Array>({ maxEntries: 100, maxBytes: 10_000, policy: "tinylfu", entryOverheadBytes: 0 });
    const consistent = (): void => {
      let bytes = 0;
      for (const key of tier.keys()) bytes += (tier.peek(key) as Uint8Array).byteLength;
      expect(tier.bytes).toBe(bytes);
      expect(tier.size).toBe([...tier.keys()].length);
    };
    for (let i = 0; i < 99; i++) tier.set(`k${i}`, new Uint8Array(50));
    for (let r = 0; r < 2; r++) for (let i = 0; i < 99; i++) tier.get(`k${i}`);
    tier.set("w", new Uint8Array(10)); // fits the 100-byte window
    consistent();
    // "big" pushes "w" and itself out of the window; both lose to the hot main space.
    expect(tier.set("big", new Uint8Array(6_000))).toBe(false);
    consistent();
    expect(tier.has("w")).toBe(false);
    for (let i = 0; i < 50; i++) {
      tier.set(`n${i}`, new Uint8Array(10 + (i % 7) * 40));
      consistent();
    }
  });
});
