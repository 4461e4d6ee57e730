import { beforeEach, describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { InvalidArgumentError, TierUnavailableError } from "../../core/errors.js";
import { CacheEngine, type ValueToSet } from "../../server/engine/cache-engine.js";
import type { Change } from "../../server/engine/invalidation-bus.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);
const entry = (key: string, value: string, tags?: string[]): ValueToSet => ({ key, value: bytes(value), contentType: "text/plain", ttlMs: 0, ...(tags && { tags }) });

function engineWith(durable: FakeDurableTier | undefined, onChange?: (change: Change) => void, degradedWrites = false) {
  const clock = fakeClock();
  return new CacheEngine({
    durable,
    degradedWrites,
    codec: new ValueCodec(),
    maxKeyBytes: 1024,
    maxBatch: 100,
    maxNamespaces: 10,
    clock: clock.now,
    ...(onChange && { onChange }),
    settingsFor: () => ({ defaultTtlMs: 0, ttlJitter: 0, memoryMaxEntries: 100, memoryMaxBytes: 1 << 20, policy: "lru" }),
  });
}

for (const mode of ["memory only", "with a durable tier"] as const) {
  describe(`CacheEngine tags (${mode})`, () => {
    let durable: FakeDurableTier | undefined;
    let engine: CacheEngine;
    beforeEach(() => {
      durable = mode === "memory only" ? undefined : new FakeDurableTier(fakeClock().now);
      engine = engineWith(durable);
    });

    it("hides every value written before with any of the tags, from every read, and serves values written after", async () => {
      await engine.setMany("ns", [entry("a", "1", ["user:1", "org:7"]), entry("b", "2", ["org:7"]), entry("c", "3", ["user:2"]), entry("d", "4")]);
      await engine.invalidateTags("ns", ["org:7"]);
      expect(await engine.get("ns", "a")).toBeUndefined();
      expect(await engine.has("ns", "b")).toBe(false);
      expect((await engine.getMany("ns", ["a", "b", "c", "d"])).map((f) => f.key)).toEqual(["c", "d"]);
      expect((await engine.getOrLease("ns", "a", 1000, 0)).found).toBeUndefined();
      await engine.set("ns", entry("a", "new", ["org:7"]));
      expect(text((await engine.get("ns", "a"))?.value)).toBe("new");
      expect(engine.stats("ns")[0]!.tagInvalidations).toBe(1);
    });

    it("leaves other namespaces alone", async () => {
      await engine.set("ns", entry("a", "1", ["t"]));
      await engine.set("other", entry("a", "1", ["t"]));
      await engine.invalidateTags("other", ["t"]);
      expect(text((await engine.get("ns", "a"))?.value)).toBe("1");
      expect(await engine.get("other", "a")).toBeUndefined();
    });

    it("refuses tags past the limits with InvalidArgumentError, before writing anything", async () => {
      const many = Array.from({ length: 17 }, (_, i) => `t${i}`);
      await expect(engine.set("ns", entry("a", "1", many))).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(engine.set("ns", entry("a", "1", ["x".repeat(129)]))).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(engine.set("ns", entry("a", "1", [""]))).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(engine.invalidateTags("ns", [])).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(engine.invalidateTags("ns", Array.from({ length: 65 }, (_, i) => `t${i}`))).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await engine.get("ns", "a")).toBeUndefined();
    });
  });
}

describe("CacheEngine tags across instances (one durable tier)", () => {
  it("an invalidation made elsewhere hides values once its change arrives, and values read from the durable tier at once", async () => {
    const durable = new FakeDurableTier(fakeClock().now);
    const changes: Change[] = [];
    const a = engineWith(durable, (change) => changes.push(change));
    const b = engineWith(durable);
    await a.set("ns", entry("k", "v", ["t"]));
    await a.set("ns", entry("cold", "v", ["t"]));
    expect(text((await b.get("ns", "k"))?.value)).toBe("v"); // b learns tag t's epoch and keeps k in memory
    await a.invalidateTags("ns", ["t"]);
    const tagsChange = changes.find((c) => c.kind === "tags")!;
    expect(tagsChange).toEqual({ kind: "tags", namespace: "ns", keys: ["t"] });
    b.applyRemoteChange(tagsChange);
    expect(await b.get("ns", "k")).toBeUndefined();
    expect(await b.get("ns", "cold")).toBeUndefined();
  });

  it("a memory copy its tags hide gives way to what the durable tier holds now (a newer value whose change has not arrived)", async () => {
    const durable = new FakeDurableTier(fakeClock().now);
    const changes: Change[] = [];
    const a = engineWith(durable, (change) => changes.push(change));
    const b = engineWith(durable);
    await a.set("ns", entry("k", "v", ["t"]));
    expect(text((await b.get("ns", "k"))?.value)).toBe("v"); // b keeps k in memory
    await a.invalidateTags("ns", ["t"]);
    b.applyRemoteChange(changes.find((c) => c.kind === "tags")!);
    await a.set("ns", entry("k", "v2", ["t"])); // its set change never reaches b
    expect(text((await b.get("ns", "k"))?.value)).toBe("v2");
  });

  it("a resync forgets every tag epoch it knew", async () => {
    const durable = new FakeDurableTier(fakeClock().now);
    const a = engineWith(durable);
    const b = engineWith(durable);
    await a.set("ns", entry("k", "v", ["t"]));
    expect(await b.get("ns", "k")).toBeDefined();
    await a.invalidateTags("ns", ["t"]);
    b.forgetRemoteState();
    expect(await b.get("ns", "k")).toBeUndefined();
  });

  it("a value written after the counter was read but before an invalidation landed is hidden (a miss, never stale)", async () => {
    const durable = new FakeDurableTier(fakeClock().now);
    const a = engineWith(durable);
    const realSetMany = durable.setMany.bind(durable);
    durable.setMany = async (ns, writes) => {
      await durable.invalidateTags(ns, ["t"]); // lands between the counter read and the write
      return realSetMany(ns, writes);
    };
    await a.set("ns", entry("k", "v", ["t"]));
    durable.setMany = realSetMany;
    const fresh = engineWith(durable);
    expect(await fresh.get("ns", "k")).toBeUndefined();
  });

  it("an invalidation whose outcome is uncertain is announced anyway, and forgets the tags here", async () => {
    const durable = new FakeDurableTier(fakeClock().now);
    const changes: Change[] = [];
    const a = engineWith(durable, (change) => changes.push(change));
    await a.set("ns", entry("k", "v", ["t"]));
    durable.failWrites = true;
    const real = durable.invalidateTags.bind(durable);
    durable.invalidateTags = async (ns, tags) => {
      durable.failWrites = false;
      await real(ns, tags); // applied, but the answer is lost
      throw new TierUnavailableError("timed out");
    };
    await expect(a.invalidateTags("ns", ["t"])).rejects.toBeInstanceOf(TierUnavailableError);
    expect(changes.at(-1)).toEqual({ kind: "tags", namespace: "ns", keys: ["t"] });
    expect(await a.get("ns", "k")).toBeUndefined();
  });

  it("its own invalidation hides the tag's values here even when a change heard from elsewhere lands while it is in flight", async () => {
    const durable = new FakeDurableTier(fakeClock().now);
    const a = engineWith(durable);
    await a.set("ns", entry("k", "v", ["t"]));
    expect(text((await a.get("ns", "k"))?.value)).toBe("v"); // a knows tag t's epoch (0) now
    const real = durable.invalidateTags.bind(durable);
    let land = () => {};
    const landed = new Promise<void>((resolve) => (land = resolve));
    durable.invalidateTags = async (ns, tags) => {
      await landed;
      return real(ns, tags);
    };
    const invalidation = a.invalidateTags("ns", ["t"]);
    a.applyRemoteChange({ kind: "tags", namespace: "ns", keys: ["other"] }); // another instance's invalidation of another tag
    land();
    await invalidation;
    expect(await a.get("ns", "k")).toBeUndefined();
    expect(await a.has("ns", "k")).toBe(false);
  });

  it("a degraded tagged write (durable tier down) is kept in memory with counter 0: hidden if its tags were invalidated", async () => {
    const durable = new FakeDurableTier(fakeClock().now);
    const a = engineWith(durable, undefined, true);
    await a.set("ns", entry("seen", "v", ["old"]));
    await a.invalidateTags("ns", ["old"]);
    durable.failWrites = true;
    durable.tagEpochs = async () => {
      throw new TierUnavailableError("down");
    };
    expect(await a.set("ns", entry("k", "v", ["fresh-tag"]))).toMatchObject({ stored: 1, degraded: true });
    expect(await a.set("ns", entry("j", "v", ["old"]))).toMatchObject({ stored: 1, degraded: true });
    expect(await a.get("ns", "j")).toBeUndefined(); // tag "old" is known here, and was invalidated after counter 0
    // A tag whose epoch this instance does not know cannot be checked while the durable tier is down: the read fails, it does not guess.
    await expect(a.get("ns", "k")).rejects.toBeInstanceOf(TierUnavailableError);
  });
});

/*
 * An instance's own InvalidateTags must hide the tag's values there afterwards, even against a tag-epoch read
 * that started before it (it read the old epoch) and lands late: evicting an invalidated tag (LRU past
 * MAX_TAGS_PER_NAMESPACE, or the memory budget) counts like a forget, also inside that read's own remember.
 */
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
