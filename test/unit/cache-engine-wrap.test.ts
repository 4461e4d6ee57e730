import { describe, expect, it } from "vitest";
import type { WatchEvent } from "../../server/engine/invalidation-bus.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";
import { engineWith } from "../helpers/test-engine.js";

const bytes = (s: string) => new TextEncoder().encode(s);

function setup(maxLeases?: number) {
  const clock = fakeClock();
  const durable = new FakeDurableTier(clock.now);
  const engine = engineWith(clock, durable, {}, maxLeases !== undefined ? { maxLeases } : {});
  const events: WatchEvent[] = [];
  engine.bus.subscribe("ns", { streamId: "", afterSeq: 0 }, (event) => events.push(event));
  return { clock, durable, engine, events };
}

describe("CacheEngine: writer-tagged changes and eager-refresh leases", () => {
  it("tags a one-key Set's event with its writer only when the write reached every tier", async () => {
    const { durable, engine, events } = setup();
    const origin = { writerId: "client-a", writeSeq: 7n };
    await engine.set("ns", { key: "k", value: bytes("v"), contentType: "", ttlMs: 0, origin });
    expect(events.at(-1)).toMatchObject({ kind: "set", keys: ["k"], origin });
    durable.failWrites = true;
    await expect(engine.set("ns", { key: "k", value: bytes("w"), contentType: "", ttlMs: 0, origin: { writerId: "client-a", writeSeq: 8n } })).rejects.toThrow();
    expect(events.at(-1)).toMatchObject({ kind: "set", keys: ["k"] });
    expect(events.at(-1)).not.toHaveProperty("origin");
  });

  it("answers a one-key Set with the TTL it stored: the namespace's default when none is asked for, after TTL jitter, grace not counted", async () => {
    const clock = fakeClock();
    const engine = engineWith(clock, new FakeDurableTier(clock.now), { defaultTtlMs: 8000, ttlJitter: 0.5 }, { random: () => 0.5 });
    const set = (ttlMs: number, graceMs = 0) => engine.set("ns", { key: "k", value: bytes("v"), contentType: "", ttlMs, graceMs });
    expect((await set(1000)).ttlMs).toBe(750);
    expect((await set(1000, 60_000)).ttlMs).toBe(750);
    expect((await set(0)).ttlMs).toBe(6000);
    expect((await engine.setMany("ns", [{ key: "a", value: bytes("v"), contentType: "", ttlMs: 1000 }, { key: "b", value: bytes("v"), contentType: "", ttlMs: 1000 }])).ttlMs).toBe(0);
  });

  it("grants the lease with a fresh value only within refresh_ahead_ms of going stale, to one caller at a time", async () => {
    const { clock, engine } = setup();
    await engine.set("ns", { key: "k", value: bytes("v"), contentType: "", ttlMs: 10_000 });
    expect((await engine.getOrLease("ns", "k", 5_000, 0, undefined, false, 2_000)).leaseToken).toBeUndefined();
    clock.advance(8_500);
    const first = await engine.getOrLease("ns", "k", 5_000, 0, undefined, false, 2_000);
    expect(first.found?.stale).toBe(false);
    expect(first.leaseToken).toBeDefined();
    expect((await engine.getOrLease("ns", "k", 5_000, 0, undefined, false, 2_000)).leaseToken).toBeUndefined();
    expect((await engine.getOrLease("ns", "k", 5_000, 0)).leaseToken).toBeUndefined();
    await engine.set("ns", { key: "k", value: bytes("v2"), contentType: "", ttlMs: 10_000, leaseToken: first.leaseToken! });
    expect((await engine.getOrLease("ns", "k", 5_000, 0, undefined, false, 2_000)).leaseToken).toBeUndefined();
  });

  it("at max-leases, a caller of a free key gets neither value nor lease at once (it computes without one)", async () => {
    const { engine } = setup(1);
    expect((await engine.getOrLease("ns", "a", 60_000, 0)).leaseToken).toBeDefined();
    // Without the answer at once, this would wait out the 60 s and fail on the test's timeout.
    expect(await engine.getOrLease("ns", "b", 60_000, 60_000)).toEqual({ found: undefined, leaseToken: undefined });
  });
});
