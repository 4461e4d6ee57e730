import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ExpiryHeap } from "../../core/eviction/expiry-heap.js";
import { NO_SLOT } from "../../core/eviction/policy.js";

describe("ExpiryHeap", () => {
  it("always exposes the earliest expiry under inserts, updates and removals", () => {
    const op = fc.record({ slot: fc.nat({ max: 31 }), time: fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200, size: "max" }), (ops) => {
        const heap = new ExpiryHeap(4);
        heap.resize(32);
        const times = new Map<number, number>();
        ops.forEach(({ slot, time }, step) => {
          if (time === undefined) {
            heap.remove(slot);
            times.delete(slot);
          } else {
            heap.set(slot, time + step / 1_000); // unique times: one valid answer
            times.set(slot, time + step / 1_000);
          }
          expect(heap.size).toBe(times.size);
          const min = Math.min(...times.values());
          const top = heap.expiredAt(Infinity);
          expect(top === NO_SLOT ? Infinity : times.get(top)).toBe(min);
          expect(heap.expiredAt(min - 1e-9)).toBe(NO_SLOT);
        });
        const expected = [...times.entries()].sort((a, b) => a[1] - b[1]).map(([slot]) => slot);
        const popped: number[] = [];
        for (let slot = heap.expiredAt(Infinity); slot !== NO_SLOT; slot = heap.expiredAt(Infinity)) {
          popped.push(slot);
          heap.remove(slot);
        }
        expect(popped).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });
});
