import { beforeEach, describe, expect, it } from "vitest";
import { TierUnavailableError } from "../../core/errors.js";
import type { CacheEngine } from "../../server/engine/cache-engine.js";
import { fakeClock, type FakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";
import { engineWith } from "../helpers/test-engine.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);

describe("CacheEngine layering", () => {
  let clock: FakeClock;
  let durable: FakeDurableTier;
  let engine: CacheEngine;
  beforeEach(() => {
    clock = fakeClock();
    durable = new FakeDurableTier(clock.now);
    engine = engineWith(clock, durable);
  });

  it("writes through to the durable tier before acknowledging", async () => {
    await engine.set("ns", { key: "k", value: bytes("v"), contentType: "text/plain", ttlMs: 0 });
    expect(durable.data.size).toBe(1);
    expect((await engine.get("ns", "k"))?.tier).toBe("memory");
  });

  it("does not acknowledge, nor keep in memory, a write the durable tier refused", async () => {
    await engine.set("ns", { key: "k", value: bytes("old"), contentType: "", ttlMs: 0 });
    durable.failWrites = true;
    await expect(engine.set("ns", { key: "k", value: bytes("new"), contentType: "", ttlMs: 0 })).rejects.toBeInstanceOf(TierUnavailableError);
    await expect(engine.setMany("ns", [{ key: "j", value: bytes("x"), contentType: "", ttlMs: 0 }])).rejects.toBeInstanceOf(TierUnavailableError);
    expect(text((await engine.get("ns", "k"))?.value)).toBe("old");
    expect(await engine.get("ns", "j")).toBeUndefined();
  });

  it("promotes a durable hit with its remaining TTL, never extending it", async () => {
    const other = engineWith(clock, durable);
    await other.set("ns", { key: "k", value: bytes("v"), contentType: "", ttlMs: 10_000 });
    clock.advance(3_000);
    const first = await engine.get("ns", "k");
    expect(first).toMatchObject({ tier: "lmdb", ttlRemainingMs: 7_000 });
    clock.advance(2_000);
    expect(await engine.get("ns", "k")).toMatchObject({ tier: "memory", ttlRemainingMs: 5_000 });
    clock.advance(5_000);
    expect(await engine.get("ns", "k")).toBeUndefined();
  });

  it("makes one durable read for concurrent misses of one key (single-flight)", async () => {
    const other = engineWith(clock, durable);
    await other.set("ns", { key: "hot", value: bytes("v"), contentType: "", ttlMs: 0 });
    let open!: () => void;
    durable.gate = new Promise((r) => (open = r));
    const readers = Array.from({ length: 1000 }, () => engine.get("ns", "hot"));
    open();
    const results = await Promise.all(readers);
    expect(durable.calls.get).toBe(1);
    expect(results.every((r) => text(r?.value) === "v")).toBe(true);
  });

  it("joins single gets and batch gets of the same keys", async () => {
    const other = engineWith(clock, durable);
    await other.setMany("ns", [
      { key: "a", value: bytes("1"), contentType: "", ttlMs: 0 },
      { key: "b", value: bytes("2"), contentType: "", ttlMs: 0 },
    ]);
    let open!: () => void;
    durable.gate = new Promise((r) => (open = r));
    const single = engine.get("ns", "a");
    const batch = engine.getMany("ns", ["a", "b", "c"]);
    open();
    expect(text((await single)?.value)).toBe("1");
    expect((await batch).map((f) => f.key)).toEqual(["a", "b"]);
    expect(durable.calls.get + durable.calls.getMany).toBe(2);
  });

  it("does not promote a read that a write overtook", async () => {
    const other = engineWith(clock, durable);
    await other.set("ns", { key: "k", value: bytes("old"), contentType: "", ttlMs: 0 });
    let open!: () => void;
    durable.gate = new Promise((r) => (open = r));
    const staleRead = engine.get("ns", "k");
    await engine.set("ns", { key: "k", value: bytes("new"), contentType: "", ttlMs: 0 });
    open();
    await staleRead;
    durable.gate = undefined;
    expect(text((await engine.get("ns", "k"))?.value)).toBe("new");
  });

  it("applies the namespace default TTL to writes that give none", async () => {
    const withDefault = engineWith(clock, durable, { defaultTtlMs: 1_000 });
    await withDefault.set("ns", { key: "k", value: bytes("v"), contentType: "", ttlMs: 0 });
    expect((await withDefault.get("ns", "k"))?.ttlRemainingMs).toBe(1_000);
    clock.advance(1_000);
    expect(await withDefault.get("ns", "k")).toBeUndefined();
  });

  it("deletes, touches and clears in every tier", async () => {
    await engine.setMany("ns", [
      { key: "a", value: bytes("1"), contentType: "", ttlMs: 100 },
      { key: "b", value: bytes("2"), contentType: "", ttlMs: 0 },
    ]);
    await engine.set("other", { key: "a", value: bytes("x"), contentType: "", ttlMs: 0 });
    expect(await engine.touch("ns", "a", 10_000)).toBe(true);
    clock.advance(5_000);
    expect(text((await engine.get("ns", "a"))?.value)).toBe("1");
    expect(await durable.has("ns", "a")).toBe(true);
    expect(await engine.delete("ns", "b")).toBe(true);
    expect(await durable.has("ns", "b")).toBe(false);
    await engine.clear("ns");
    expect(await engine.get("ns", "a")).toBeUndefined();
    expect(await durable.has("ns", "a")).toBe(false);
    expect(text((await engine.get("other", "a"))?.value)).toBe("x");
  });

  it("refuses a write to one namespace more than allowed, never a read", async () => {
    for (let i = 0; i < 10; i++) await engine.set(`ns${i}`, { key: "k", value: bytes("v"), contentType: "", ttlMs: 0 });
    await expect(engine.set("one-too-many", { key: "k", value: bytes("v"), contentType: "", ttlMs: 0 })).rejects.toThrow(/max-namespaces/);
    expect(await engine.has("one-too-many", "k")).toBe(false);
    expect(await engine.get("one-too-many", "k")).toBeUndefined();
    await engine.delete("ns0", "k");
    await engine.set("one-too-many", { key: "k", value: bytes("v"), contentType: "", ttlMs: 0 });
  });

  it("keeps no state for namespaces that are only read, and forgets one once it is empty", async () => {
    for (let i = 0; i < 100; i++) {
      await engine.get(`read-only${i}`, "k");
      await engine.has(`read-only${i}`, "k");
      engine.stats(`read-only${i}`);
    }
    expect(engine.namespaceCount).toBe(0);
    await engine.set("ns", { key: "k", value: bytes("v"), contentType: "", ttlMs: 0 });
    expect(engine.namespaceCount).toBe(1);
    await engine.clear("ns");
    expect(engine.namespaceCount).toBe(0);
  });

  it("lists a namespace whose state was forgotten, with counters that never go down", async () => {
    await engine.set("churn", { key: "k", value: bytes("v"), contentType: "", ttlMs: 0 });
    for (let i = 0; i < 5; i++) await engine.get("churn", "k");
    const memoryOf = (list: ReturnType<CacheEngine["stats"]>) => list.find((ns) => ns.namespace === "churn")?.tiers[0];
    expect(memoryOf(engine.stats())).toMatchObject({ hits: 5, sets: 1 });
    await engine.delete("churn", "k");
    expect(engine.namespaceCount).toBe(0);
    expect(memoryOf(engine.stats())).toMatchObject({ hits: 5, sets: 1, deletes: 1 });
    expect(memoryOf(engine.stats("churn"))).toMatchObject({ hits: 5, sets: 1, deletes: 1 });
    await engine.set("churn", { key: "k", value: bytes("v"), contentType: "", ttlMs: 0 });
    expect(engine.stats().filter((ns) => ns.namespace === "churn")).toHaveLength(1);
    expect(memoryOf(engine.stats())).toMatchObject({ hits: 5, sets: 2, deletes: 1 });
  });
});
