import { afterEach, describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { TierUnavailableError } from "../../core/errors.js";
import { CacheEngine } from "../../server/engine/cache-engine.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";
import { UnhandledRejections } from "../helpers/unhandled-rejections.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);
const settle = () => new Promise((resolve) => setImmediate(resolve));

function engineOver(durable: FakeDurableTier, clock = fakeClock()) {
  return new CacheEngine({
    durable,
    codec: new ValueCodec(),
    maxKeyBytes: 1024,
    maxBatch: 100,
    maxNamespaces: 10,
    clock: clock.now,
    settingsFor: () => ({ defaultTtlMs: 0, ttlJitter: 0, memoryMaxEntries: 100, memoryMaxBytes: 1 << 20, policy: "lru" }),
  });
}

/** Durable reads wait, then fail with TierUnavailableError, when `fail()` is called. */
function failReadsLater(durable: FakeDurableTier): () => void {
  let fail!: (error: Error) => void;
  durable.gate = new Promise((_, reject) => (fail = reject));
  return () => fail(new TierUnavailableError("redis get failed: call cancelled"));
}

describe("CacheEngine: a read nobody waits for any more", () => {
  const unhandled = new UnhandledRejections().install();
  afterEach(() => unhandled.assertNoneSince(0));

  it("a call that ended before its read-through started leaves no unhandled rejection when the load fails later (it ended the server process)", async () => {
    const clock = fakeClock();
    const durable = new FakeDurableTier(clock.now);
    const engine = engineOver(durable, clock);
    const fail = failReadsLater(durable);
    const gone = new AbortController();
    gone.abort(new Error("the client went away"));
    await expect(engine.get("ns", "k", { signal: gone.signal })).rejects.toThrow("the client went away");
    await expect(engine.getMany("ns", ["a", "b"], { signal: gone.signal })).rejects.toThrow("the client went away");
    fail();
    await settle();
    expect(durable.calls.get + durable.calls.getMany).toBeGreaterThan(0);
    unhandled.assertNoneSince(0);
  });

  it("a durable tier whose get returns the envelope itself, not a promise, still serves reads", async () => {
    const clock = fakeClock();
    const writer = new FakeDurableTier(clock.now);
    await engineOver(writer, clock).set("ns", { key: "k", value: bytes("v"), contentType: "text/plain", ttlMs: 0 });
    const plain = Object.assign(Object.create(writer) as FakeDurableTier, {
      get: (namespace: string, key: string) => writer.data.get(`${namespace}\u0000${key}`),
    });
    const found = await engineOver(plain, clock).get("ns", "k");
    expect({ value: text(found?.value), tier: found?.tier }).toEqual({ value: "v", tier: "lmdb" });
  });
});
