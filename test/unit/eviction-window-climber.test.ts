import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ShadowCache } from "../../core/eviction/shadow-cache.js";
import { MIN_SHADOW_ENTRIES, WindowClimber } from "../../core/eviction/window-climber.js";
import { INITIAL_WINDOW_SHARE, tinyLfuHash } from "../../core/eviction/window-tinylfu.js";

/** Feeds `keys` to a climber for a cache of `capacity` entries; returns the window share it ends with. */
function climb(capacity: number, keys: Iterable<string>): number {
  const climber = new WindowClimber({ maxEntries: capacity, maxBytes: Infinity }, capacity, INITIAL_WINDOW_SHARE);
  for (const key of keys) {
    const hash = tinyLfuHash(key);
    if (climber.samples(hash)) climber.observe(hash, 1);
  }
  return climber.share;
}

function* recency(length: number, capacity: number): Generator<string> {
  let x = 11;
  for (let t = 0; t < length; t++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    yield `k${Math.max(0, Math.floor(t / 3) - Math.floor(-Math.log(1 - x / 2 ** 32) * capacity * 0.4))}`;
  }
}

function* loop(length: number, keys: number): Generator<string> {
  for (let t = 0; t < length; t++) yield `k${t % keys}`;
}

describe("WindowClimber", () => {
  it("samples keys sparsely enough for large caches, keeping at least MIN_SHADOW_ENTRIES per shadow", () => {
    for (const capacity of [1, 100, 511, 512, 10_000, 1_000_000]) {
      const climber = new WindowClimber({ maxEntries: capacity, maxBytes: Infinity }, capacity, INITIAL_WINDOW_SHARE);
      const shadowEntries = capacity / climber.sampleRate;
      expect(climber.sampleRate === 1 || shadowEntries >= MIN_SHADOW_ENTRIES).toBe(true);
      expect(shadowEntries < 2 * MIN_SHADOW_ENTRIES || climber.sampleRate === 1).toBe(true);
    }
  });

  it("grows the window when recent keys are what is asked for, and keeps it small on a loop", () => {
    expect(climb(1_000, recency(200_000, 1_000))).toBeGreaterThan(0.5);
    expect(climb(1_000, loop(200_000, 1_200))).toBeLessThan(0.1);
  });
});

describe("ShadowCache", () => {
  it("holds no more than its bounds, and hits exactly the hashes it holds", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 400 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(fc.tuple(fc.nat({ max: 40 }), fc.integer({ min: 1, max: 60 })), { maxLength: 300 }),
        (maxEntries, maxBytes, share, requests) => {
          const shadow = new ShadowCache({ maxEntries, maxBytes }, share, maxEntries);
          const sizes = new Map<number, number>();
          for (const [n, size] of requests) {
            const key = tinyLfuHash(`k${n}`);
            const held = shadow.has(key);
            expect(shadow.request(key, size)).toBe(held);
            if (!held && shadow.has(key)) sizes.set(key, size);
            for (const k of sizes.keys()) if (!shadow.has(k)) sizes.delete(k);
            expect(shadow.size).toBe(sizes.size);
            expect(shadow.size).toBeLessThanOrEqual(maxEntries);
            expect([...sizes.values()].reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(maxBytes);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
