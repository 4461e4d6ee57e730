import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jitteredTtl, jitterPpm, shortestJitteredTtl } from "../../core/ttl-jitter.js";
import { MAX_TTL_MS } from "../../core/ttl-rules.js";

describe("TTL jitter", () => {
  it("never gives a write a TTL shorter than the shortest a client derives from the namespace's ppm", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_TTL_MS }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (ttl, jitter, random) => {
        const given = jitteredTtl(ttl, jitter, random);
        expect(given).toBeGreaterThanOrEqual(1);
        expect(given).toBeLessThanOrEqual(ttl);
        expect(shortestJitteredTtl(ttl, jitterPpm(jitter))).toBeLessThanOrEqual(given);
      }),
      { numRuns: 2000 },
    );
  });

  it("keeps that shortest TTL within 1 ms of the shortest the server can give, so copies are not kept needlessly short", () => {
    expect(shortestJitteredTtl(10_000, jitterPpm(0.5))).toBe(5_000);
    expect(jitteredTtl(10_000, 0.5, 0.99999999)).toBe(5_001);
    expect(shortestJitteredTtl(10_000, jitterPpm(0))).toBe(10_000);
    expect(shortestJitteredTtl(3, jitterPpm(1))).toBe(0);
    expect(jitterPpm(1 / 3)).toBe(333_334);
  });
});
