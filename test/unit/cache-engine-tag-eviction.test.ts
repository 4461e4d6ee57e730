import { describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { CacheEngine, type ValueToSet } from "../../server/engine/cache-engine.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";

/*
 * An instance's own InvalidateTags must hide the tag's values there afterwards.
 * A tag-epoch read that started before the invalidation (it read the old epoch) is remembered when it lands,
 * if no forget came since. Evicting an invalidated tag (LRU past MAX_TAGS_PER_NAMESPACE, or the memory budget) must
 * count as one: else the late read puts the OLD epoch back, and the hidden value is served again.
 */
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);
const entry = (key: string, value: string, tags?: string[]): ValueToSet => ({ key, value: bytes(value), contentType: "text/plain", ttlMs: 0, ...(tags && { tags }) });

function engineWith(durable: FakeDurableTier) {
  const clock = fakeClock();
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

/** The next tag-epoch read reads at once (before what follows) but answers only when released. */
function holdNextTagRead(durable: FakeDurableTier): () => void {
  const real = durable.tagEpochs.bind(durable);
  let release = () => {};
  const gate = new Promise<void>((r) => (release = r));
  durable.tagEpochs = async (ns, tags) => {
    const read = await real(ns, tags);
    durable.tagEpochs = real;
    await gate;
    return read;
  };
  return release;
}

/**
 * The late read of [u, t] lands when the 10,000-tag table is full (after `others` more invalidated tags) with t
 * least recently used: storing u evicts t, and t must not then be stored back at its pre-invalidation epoch.
 */
async function evictedInsideRemember(others: number): Promise<string | undefined> {
  const durable = new FakeDurableTier(fakeClock().now);
  const a = engineWith(durable);
  await a.set("ns", entry("k", "v", ["u", "t"]));
  const release = holdNextTagRead(durable);
  const concurrent = a.get("ns", "k");
  await new Promise((r) => setTimeout(r, 5));
  await a.invalidateTags("ns", ["t"]);
  for (let n = 0; n < others; n += 64) await a.invalidateTags("ns", Array.from({ length: Math.min(64, others - n) }, (_, j) => `o${n + j}`));
  release();
  await concurrent;
  return text((await a.get("ns", "k"))?.value);
}

describe("own invalidateTags vs a late tag-epoch read whose remember evicts the tag", () => {
  it("control: the table is not full when the late read lands (no eviction); the value stays hidden", async () => {
    expect(await evictedInsideRemember(9_997)).toBeUndefined();
  });
  it("a value hidden by this instance's own invalidateTags stays hidden here", async () => {
    expect(await evictedInsideRemember(9_999)).toBeUndefined();
  });
});

describe("own invalidateTags vs a late tag-epoch read after the tag was evicted", () => {
  it("a value hidden by this instance's own invalidateTags stays hidden here", async () => {
    const durable = new FakeDurableTier(fakeClock().now);
    const a = engineWith(durable);
    await a.set("ns", entry("k", "v", ["t"]));
    const release = holdNextTagRead(durable);
    const concurrent = a.get("ns", "k"); // needs t's epoch: the read is in flight
    await new Promise((r) => setTimeout(r, 5));
    await a.invalidateTags("ns", ["t"]);
    expect(await a.get("ns", "k")).toBeUndefined(); // hidden, as it should be
    // other invalidations of the namespace (64 tags each) push t out of the 10,000-tag LRU table
    for (let i = 0; i < 160; i++) await a.invalidateTags("ns", Array.from({ length: 64 }, (_, j) => `o${i}-${j}`));
    release();
    await concurrent; // started before the invalidation: either outcome is fine for it
    expect(text((await a.get("ns", "k"))?.value)).toBeUndefined(); // observed: "v"
    expect(await a.has("ns", "k")).toBe(false);
  });
});
