import { describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { CacheEngine, type ValueToSet } from "../../server/engine/cache-engine.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";

/*
 * The own-invalidation undo of cache-engine-tag-eviction.test.ts, when the eviction of the invalidated tag happens
 * inside the late read's own remember(): the value has tags [u, t]; the late read of [u, t] lands when the 10,000-tag
 * table is full with t least recently used. Setting u evicts t (generation bumped, but remember checked it already),
 * then t is set back to its pre-invalidation epoch. The hidden value is served again on this instance.
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

async function scenario(others: number): Promise<string | undefined> {
  {
    const durable = new FakeDurableTier(fakeClock().now);
    const a = engineWith(durable);
    await a.set("ns", entry("k", "v", ["u", "t"]));
    const real = durable.tagEpochs.bind(durable);
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    durable.tagEpochs = async (ns, tags) => {
      const read = await real(ns, tags); // read now (before the invalidation), answered late
      durable.tagEpochs = real;
      await gate;
      return read;
    };
    const concurrent = a.get("ns", "k"); // needs the epochs of u and t: the read is in flight
    await new Promise((r) => setTimeout(r, 5));
    await a.invalidateTags("ns", ["t"]); // acknowledged: t=1 remembered here
    // 9,999 other invalidated tags: the table is exactly full (10,000), t least recently used, nothing evicted yet
    let n = 0;
    while (n < others) {
      const size = Math.min(64, others - n);
      await a.invalidateTags("ns", Array.from({ length: size }, (_, j) => `o${n + j}`));
      n += size;
    }
    release();
    await concurrent; // started before the invalidation: either outcome is fine for it
    return text((await a.get("ns", "k"))?.value);
  }
}

describe("own invalidateTags vs a late tag-epoch read whose remember evicts the tag", () => {
  it("control: table not full when the late read lands (no eviction), the value stays hidden", async () => {
    expect(await scenario(9_997)).toBeUndefined();
  });
  it("a value hidden by this instance's own invalidateTags stays hidden here", async () => {
    expect(await scenario(9_999)).toBeUndefined(); // observed: "v"
  });
});
