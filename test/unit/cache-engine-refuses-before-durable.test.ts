import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { InvalidArgumentError, TierUnavailableError, ValueTooLargeError } from "../../core/errors.js";
import { CacheEngine, type ValueToSet } from "../../server/engine/cache-engine.js";
import type { DurableTier } from "../../server/engine/durable-tier.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";

/** A durable tier that is down: every call is counted and fails as a timed-out Redis call would. */
function downDurableTier(): { tier: DurableTier; calls: string[] } {
  const calls: string[] = [];
  const tier = new Proxy(new FakeDurableTier(fakeClock().now), {
    get(target, prop, receiver) {
      const real = Reflect.get(target, prop, receiver) as unknown;
      if (typeof real !== "function" || prop === "close") return real;
      return () => {
        calls.push(String(prop));
        return Promise.reject(new TierUnavailableError(`${String(prop)} failed: timed out after 500 ms`));
      };
    },
  });
  return { tier, calls };
}

function engineWith(durable: DurableTier | undefined): CacheEngine {
  return new CacheEngine({
    durable,
    codec: new ValueCodec({ maxValueBytes: 64 }),
    maxKeyBytes: 16,
    maxBatch: 8,
    maxNamespaces: 10,
    clock: fakeClock().now,
    settingsFor: () => ({ defaultTtlMs: 0, ttlJitter: 0, memoryMaxEntries: 100, memoryMaxBytes: 1 << 20, policy: "lru" }),
  });
}

const bytes = (n: number) => new Uint8Array(n).fill(97);
const good = (key: string): ValueToSet => ({ key, value: bytes(4), contentType: "text/plain", ttlMs: 1000, tags: ["t1"] });

/** Ways to make one entry of a write refused without any I/O. */
const badEntry = fc.oneof(
  fc.constant<ValueToSet>({ key: "", value: bytes(1), contentType: "text/plain", ttlMs: 0 }),
  fc.constant<ValueToSet>({ key: "k".repeat(16) + "é", value: bytes(1), contentType: "text/plain", ttlMs: 0 }),
  fc.constant<ValueToSet>({ key: "k", value: bytes(1), contentType: "text/plain", ttlMs: -1 }),
  fc.constant<ValueToSet>({ key: "k", value: bytes(1), contentType: "text/plain", ttlMs: 1.5 }),
  fc.constant<ValueToSet>({ key: "k", value: bytes(1), contentType: "text/plain", ttlMs: 0, graceMs: -5 }),
  fc.constant<ValueToSet>({ key: "k", value: bytes(65), contentType: "text/plain", ttlMs: 0 }),
  fc.constant<ValueToSet>({ key: "k", value: bytes(1), contentType: "x".repeat(256), ttlMs: 0 }),
  fc.constant<ValueToSet>({ key: "k", value: bytes(1), contentType: "\ud800", ttlMs: 0 }),
  fc.constant<ValueToSet>({ key: "k", value: bytes(1), contentType: "text/plain", ttlMs: 0, tags: [""] }),
);

function refusal(err: unknown): string {
  if (err instanceof InvalidArgumentError) return "INVALID_ARGUMENT";
  if (err instanceof ValueTooLargeError) return "RESOURCE_EXHAUSTED";
  return `not a refusal: ${String(err)}`;
}

async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return "accepted";
  } catch (err) {
    return refusal(err);
  }
}

describe("CacheEngine refuses bad input before it asks the durable tier anything", () => {
  it("a write with one bad entry among tagged ones is refused as a memory-only engine refuses it, with the durable tier down and never called", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom("a", "b", "c"), { maxLength: 4 }), badEntry, fc.nat(4), async (goodKeys, bad, at) => {
        const entries = goodKeys.map(good);
        entries.splice(Math.min(at, entries.length), 0, bad);
        const { tier, calls } = downDurableTier();
        const expected = await outcome(() => engineWith(undefined).setMany("ns", entries));
        expect(expected).not.toBe("accepted");
        expect(await outcome(() => engineWith(tier).setMany("ns", entries))).toBe(expected);
        expect(calls).toEqual([]);
      }),
      { seed: 11, numRuns: 300 },
    );
  });

  it("every other operation refuses bad keys, namespaces, TTLs and tags with the durable tier down and never called", async () => {
    const long = "k".repeat(17);
    const cases: [string, (engine: CacheEngine) => Promise<unknown>][] = [
      ["get", (e) => e.get("ns", long)],
      ["get, bad namespace", (e) => e.get("bad ns", "k")],
      ["has", (e) => e.has("ns", "")],
      ["touch, key", (e) => e.touch("ns", long, 10)],
      ["touch, ttl", (e) => e.touch("ns", "k", -1)],
      ["delete", (e) => e.delete("ns", long)],
      ["deleteMany", (e) => e.deleteMany("ns", ["a", long])],
      ["getMany", (e) => e.getMany("ns", ["a", long])],
      ["lookupMany, batch", (e) => e.lookupMany("ns", Array.from({ length: 9 }, (_, i) => `k${i}`))],
      ["getOrLease, key", (e) => e.getOrLease("ns", long, 1000, 0)],
      ["getOrLease, lease_ms", (e) => e.getOrLease("ns", "k", 0, 0)],
      ["releaseLease", (e) => e.releaseLease("ns", long, "token")],
      ["invalidateTags", (e) => e.invalidateTags("ns", ["t", ""])],
      ["clear, bad namespace", (e) => e.clear("-x")],
    ];
    for (const [name, call] of cases) {
      const { tier, calls } = downDurableTier();
      const expected = await outcome(() => call(engineWith(undefined)));
      expect(expected, name).toMatch(/^(INVALID_ARGUMENT|RESOURCE_EXHAUSTED)$/);
      expect(await outcome(() => call(engineWith(tier))), name).toBe(expected);
      expect(calls, name).toEqual([]);
    }
  });
});
