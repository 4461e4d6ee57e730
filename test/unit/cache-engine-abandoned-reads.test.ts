import { afterEach, describe, expect, it } from "vitest";
import { TierUnavailableError } from "../../core/errors.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";
import { engineWith } from "../helpers/test-engine.js";
import { UnhandledRejections } from "../helpers/unhandled-rejections.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);
const settle = () => new Promise((resolve) => setImmediate(resolve));

const engineOver = (durable: FakeDurableTier, clock = fakeClock()) => engineWith(clock, durable);

/** Durable reads wait, then fail with TierUnavailableError, when `fail()` is called. */
function failReadsLater(durable: FakeDurableTier): () => void {
  let fail!: (error: Error) => void;
  durable.gate = new Promise((_, reject) => (fail = reject));
  return () => fail(new TierUnavailableError("redis get failed: call cancelled"));
}

describe("CacheEngine: a read nobody waits for any more", () => {
  const unhandled = new UnhandledRejections().install();
  afterEach(() => unhandled.assertNoneSince(0));

  it("calls that end while their read-through runs leave no unhandled rejection when the load fails later (it ended the server process)", async () => {
    const clock = fakeClock();
    const durable = new FakeDurableTier(clock.now);
    const engine = engineOver(durable, clock);
    const fail = failReadsLater(durable);
    const gone = new AbortController();
    const get = engine.get("ns", "k", { signal: gone.signal });
    const getMany = engine.getMany("ns", ["a", "b"], { signal: gone.signal });
    gone.abort(new Error("the client went away"));
    await expect(get).rejects.toThrow("the client went away");
    await expect(getMany).rejects.toThrow("the client went away");
    expect(durable.calls.get + durable.calls.getMany).toBe(2);
    fail();
    await settle();
    unhandled.assertNoneSince(0);
  });

  it("a call that ended before it asked starts no read-through", async () => {
    const clock = fakeClock();
    const durable = new FakeDurableTier(clock.now);
    const engine = engineOver(durable, clock);
    const gone = new AbortController();
    gone.abort(new Error("the client went away"));
    await expect(engine.get("ns", "k", { signal: gone.signal })).rejects.toThrow("the client went away");
    await expect(engine.getMany("ns", ["a", "b"], { signal: gone.signal })).rejects.toThrow("the client went away");
    expect(durable.calls.get + durable.calls.getMany).toBe(0);
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
