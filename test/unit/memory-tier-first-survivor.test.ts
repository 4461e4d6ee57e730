import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemoryTier, SURVIVOR_EXPIRY_MARGIN_MS, type EvictionPolicyName } from "../../core/memory-tier.js";
import { fakeClock } from "../helpers/fake-clock.js";

/** One set: a key of a small space, a value of some length, a TTL relative to now (0 = none, negative = past). */
interface SetOp {
  key: string;
  length: number;
  ttl: number;
}

const KEYS = 8;
const setArb: fc.Arbitrary<SetOp> = fc.record({
  key: fc.nat({ max: KEYS - 1 }).map((i) => `k${i}`),
  length: fc.integer({ min: 0, max: 40 }),
  ttl: fc.oneof(
    { weight: 4, arbitrary: fc.constant(0) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 * SURVIVOR_EXPIRY_MARGIN_MS }) },
    { weight: 1, arbitrary: fc.constant(-1) },
  ),
});

function tierOf(policy: EvictionPolicyName, maxEntries: number, maxBytes: number, clock: () => number): MemoryTier<Uint8Array> {
  return new MemoryTier<Uint8Array>({ maxEntries, maxBytes, policy, clock, entryOverheadBytes: 8, sizeOfKey: (key) => key.length });
}

/** What `tier` serves for every key of the space (peek: no effect on the tier). */
function served(tier: MemoryTier<Uint8Array>): (Uint8Array | undefined)[] {
  return Array.from({ length: KEYS }, (_, i) => tier.peek(`k${i}`));
}

describe("MemoryTier.firstSurvivor", () => {
  it("skipping the sets before it (deleting their keys instead) leaves the tier serving exactly what the whole run of sets leaves", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<EvictionPolicyName>("lru", "fifo", "lfu", "tinylfu"),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 20, max: 200 }),
        fc.array(setArb, { maxLength: 10 }),
        fc.array(setArb, { minLength: 1, maxLength: 25 }),
        fc.nat({ max: 2 * SURVIVOR_EXPIRY_MARGIN_MS }),
        (policy, maxEntries, maxBytes, before, batch, elapsed) => {
          const clock = fakeClock();
          const whole = tierOf(policy, maxEntries, maxBytes, clock.now);
          const skipping = tierOf(policy, maxEntries, maxBytes, clock.now);
          const values = new Map<SetOp, Uint8Array>();
          const valueOf = (op: SetOp) => values.get(op) ?? values.set(op, new Uint8Array(op.length)).get(op)!;
          const expiresAt = (op: SetOp) => (op.ttl === 0 ? 0 : clock.now() + op.ttl);
          for (const op of before) {
            whole.set(op.key, valueOf(op), expiresAt(op));
            skipping.set(op.key, valueOf(op), expiresAt(op));
          }
          clock.advance(elapsed);
          const moments = batch.map(expiresAt);
          const from = skipping.firstSurvivor(batch.length, (i) => batch[i]!.key, (i) => valueOf(batch[i]!), (i) => moments[i]!);
          if (policy === "lfu" || policy === "tinylfu" || batch.length <= maxEntries) expect(from).toBe(0);
          batch.forEach((op, i) => {
            whole.set(op.key, valueOf(op), moments[i]!);
            if (i < from) skipping.delete(op.key);
            else skipping.set(op.key, valueOf(op), moments[i]!);
          });
          expect(served(skipping)).toEqual(served(whole));
          for (const at of [SURVIVOR_EXPIRY_MARGIN_MS, 3 * SURVIVOR_EXPIRY_MARGIN_MS]) {
            clock.advance(at);
            expect(served(skipping)).toEqual(served(whole));
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("under LRU, a batch of more distinct keys than the tier holds is stored from its last maxEntries keys on", () => {
    const clock = fakeClock();
    const tier = tierOf("lru", 3, 10_000, clock.now);
    const keys = ["a", "b", "c", "b", "d", "e", "d"];
    const from = tier.firstSurvivor(keys.length, (i) => keys[i]!, () => new Uint8Array(4), () => 0);
    expect(from).toBe(3); // from the end: d (6), e (5), d again (4, not counted twice), b (3)
  });

  it("does not count a later set that will not be stored (expiring within the margin, too large, or no value)", () => {
    const clock = fakeClock();
    const tier = tierOf("lru", 1, 50, clock.now);
    const keys = ["a", "b", "c", "d"];
    const soon = clock.now() + SURVIVOR_EXPIRY_MARGIN_MS;
    const lengths = [4, 4, 100, 4];
    const moments = [0, 0, 0, soon];
    const from = tier.firstSurvivor(keys.length, (i) => keys[i]!, (i) => new Uint8Array(lengths[i]!), (i) => moments[i]!);
    expect(from).toBe(1);
    const none = tier.firstSurvivor(keys.length, (i) => keys[i]!, () => undefined, () => 0);
    expect(none).toBe(0);
  });
});
