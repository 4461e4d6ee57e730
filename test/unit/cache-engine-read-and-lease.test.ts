import { describe, expect, it } from "vitest";
import { isFresh, isLive } from "../../core/envelope.js";
import { TierUnavailableError } from "../../core/errors.js";
import type { CallScope, DurableWrite, LeaseAttempt, ReadAndLease, SharedLeases } from "../../server/engine/durable-tier.js";
import { fakeClock, type FakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";
import { engineWith } from "../helpers/test-engine.js";

const settle = () => new Promise((resolve) => setImmediate(resolve));
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

/** Shared leases in a map over a FakeDurableTier's data, with the one-round-trip read and lease; calls counted, and a gate and a hook to stall or fail them. */
class FakeReadAndLease implements SharedLeases {
  readonly held = new Map<string, string>();
  readonly calls = { acquire: 0, readAndAcquire: 0 };
  /** When set, readAndAcquire waits for it first. */
  gate: Promise<void> | undefined;
  /** Judge (and take the lease) when the call is made, then wait for the gate: as Redis runs the script before its answer travels back. */
  answerBeforeGate = false;
  /** Give-backs (releases) that fail before one gets through, as while Redis stalls. */
  failingReleases = 0;
  /** Runs after the lease was taken, before the call answers: throw to fail the call (it took effect all the same). */
  afterTaking: ((scope: CallScope | undefined) => void) | undefined;

  constructor(
    private readonly durable: FakeDurableTier,
    private readonly clock: FakeClock,
  ) {}

  #take(namespace: string, key: string, token: string, unlessFresh: boolean, scope: CallScope | undefined): LeaseAttempt {
    const id = `${namespace}\u0000${key}`;
    const holder = this.held.get(id);
    if (holder === token) return { acquired: true };
    if (holder !== undefined) return { acquired: false, heldForMs: 1000 };
    const stored = this.durable.data.get(id);
    if (unlessFresh && stored !== undefined && isFresh(stored, this.clock.now())) return { acquired: false, heldForMs: 0, freshValue: true };
    this.held.set(id, token);
    this.afterTaking?.(scope);
    return { acquired: true };
  }

  async acquire(namespace: string, key: string, token: string, _durationMs: number, unlessFresh: boolean, scope?: CallScope): Promise<LeaseAttempt> {
    this.calls.acquire++;
    return this.#take(namespace, key, token, unlessFresh, scope);
  }

  async readAndAcquire(namespace: string, key: string, token: string, _durationMs: number, scope?: CallScope): Promise<ReadAndLease> {
    this.calls.readAndAcquire++;
    if (this.answerBeforeGate) {
      const answer = this.#readAndTake(namespace, key, token, scope);
      await this.gate;
      return answer;
    }
    await this.gate;
    return this.#readAndTake(namespace, key, token, scope);
  }

  #readAndTake(namespace: string, key: string, token: string, scope: CallScope | undefined): ReadAndLease {
    const stored = this.durable.data.get(`${namespace}\u0000${key}`);
    const envelope = stored !== undefined && isLive(stored, this.clock.now()) ? stored : undefined;
    return { envelope, attempt: this.#take(namespace, key, token, true, scope) };
  }

  async release(namespace: string, key: string, token: string): Promise<boolean> {
    if (this.failingReleases-- > 0) throw new TierUnavailableError("redis leaseRelease failed: timed out after 500 ms");
    const id = `${namespace}\u0000${key}`;
    if (this.held.get(id) !== token) return false;
    this.held.delete(id);
    return true;
  }

  async setFenced(namespace: string, write: DurableWrite, token: string): Promise<boolean> {
    const id = `${namespace}\u0000${write.key}`;
    const holder = this.held.get(id);
    if (holder !== undefined && holder !== token) return false;
    this.durable.data.set(id, write.envelope);
    this.held.delete(id);
    return true;
  }
}

/** Two instances over one durable tier with shared leases: `engine` under test, `other` to write values `engine` holds no copy of. */
function setup() {
  const clock = fakeClock();
  const durable = new FakeDurableTier(clock.now);
  const leases = new FakeReadAndLease(durable, clock);
  Object.assign(durable, { leases });
  return { clock, durable, leases, engine: engineWith(clock, durable), other: engineWith(clock, durable) };
}

describe("CacheEngine: GetOrLease reads and leases in one call to shared leases that can", () => {
  it("a key nobody holds: one call gives the lease, without a separate read or lease request", async () => {
    const { engine, durable, leases } = setup();
    const result = await engine.getOrLease("ns", "k", 30_000, 0);
    expect(result.found).toBeUndefined();
    expect(result.leaseToken).toBeDefined();
    expect(leases.held.get("ns\u0000k")).toBe(result.leaseToken);
    expect(leases.calls).toEqual({ acquire: 0, readAndAcquire: 1 });
    expect(durable.calls.get).toBe(0);
  });

  it("a fresh value another instance wrote is served without a lease, and kept in memory", async () => {
    const { engine, other, durable, leases } = setup();
    await other.set("ns", { key: "k", value: bytes("v1"), contentType: "", ttlMs: 10_000 });
    const result = await engine.getOrLease("ns", "k", 30_000, 0);
    expect(text(result.found?.value)).toBe("v1");
    expect(result.found?.stale).toBe(false);
    expect(result.leaseToken).toBeUndefined();
    expect(leases.held.size).toBe(0);
    expect((await engine.getOrLease("ns", "k", 30_000, 0)).found?.tier).toBe("memory");
    expect(leases.calls.readAndAcquire).toBe(1);
    expect(durable.calls.get).toBe(0);
  });

  it("a value in its grace comes with the lease; another caller meanwhile gets the stale value and no lease", async () => {
    const { engine, other, clock, leases } = setup();
    await other.set("ns", { key: "k", value: bytes("old"), contentType: "", ttlMs: 1_000, graceMs: 60_000 });
    clock.advance(2_000);
    const first = await engine.getOrLease("ns", "k", 30_000, 0);
    expect(text(first.found?.value)).toBe("old");
    expect(first.found?.stale).toBe(true);
    expect(first.leaseToken).toBeDefined();
    const second = await other.getOrLease("ns", "k", 30_000, 0);
    expect(text(second.found?.value)).toBe("old");
    expect(second.leaseToken).toBeUndefined();
    expect(leases.held.get("ns\u0000k")).toBe(first.leaseToken);
  });

  it("a lease held on another instance: the caller waits for it like any other, and gets the holder's value", async () => {
    const { engine, other, leases } = setup();
    const holder = await other.getOrLease("ns", "k", 30_000, 0);
    expect(holder.leaseToken).toBeDefined();
    const waiting = engine.getOrLease("ns", "k", 30_000, 5_000);
    await settle();
    await other.set("ns", { key: "k", value: bytes("computed"), contentType: "", ttlMs: 10_000, leaseToken: holder.leaseToken! });
    engine.applyRemoteChange({ kind: "set", namespace: "ns", keys: ["k"] }); // as the holder's instance announces it
    const result = await waiting;
    expect(text(result.found?.value)).toBe("computed");
    expect(result.leaseToken).toBeUndefined();
  });

  it("a call that took the lease and then timed out gives the lease back, and the caller gets the error", async () => {
    const { engine, leases } = setup();
    leases.afterTaking = () => {
      throw new TierUnavailableError("redis leaseReadAcquire failed: timed out after 199 ms");
    };
    await expect(engine.getOrLease("ns", "k", 30_000, 0)).rejects.toThrow(/timed out/);
    await settle();
    expect(leases.held.size).toBe(0);
    leases.afterTaking = undefined;
    expect((await engine.getOrLease("ns", "k", 30_000, 0)).leaseToken).toBeDefined();
  });

  it("a caller that left while a Get of the key kept the shared read going: the lease the read took is given back when it ends", async () => {
    const { engine, leases } = setup();
    let open!: () => void;
    leases.gate = new Promise((resolve) => (open = resolve));
    const caller = new AbortController();
    const leasing = engine.getOrLease("ns", "k", 30_000, 0, { signal: caller.signal });
    await settle();
    const reading = engine.get("ns", "k");
    caller.abort(new Error("client gone"));
    await expect(leasing).rejects.toThrow("client gone");
    open();
    expect(await reading).toBeUndefined();
    await settle();
    await settle();
    expect(leases.held.size).toBe(0);
    leases.gate = undefined;
    expect((await engine.getOrLease("ns", "k", 30_000, 0)).leaseToken).toBeDefined();
  });

  it("a value fresh when the script judged it and stale when its answer came comes with the lease, as a read then a lease request gives it (found by review)", async () => {
    const { engine, other, clock, leases } = setup();
    await other.set("ns", { key: "k", value: bytes("old"), contentType: "", ttlMs: 1_000, graceMs: 60_000 });
    let open!: () => void;
    leases.gate = new Promise((resolve) => (open = resolve));
    leases.answerBeforeGate = true;
    const leasing = engine.getOrLease("ns", "k", 30_000, 0);
    await settle();
    clock.advance(1_500);
    open();
    const result = await leasing;
    expect(result.found?.stale).toBe(true);
    expect(result.leaseToken).toBeDefined();
    expect(leases.held.get("ns\u0000k")).toBe(result.leaseToken);
  });

  it("a lease given back while the shared leases cannot answer is given back once they can (found by review)", async () => {
    const { engine, leases } = setup();
    leases.afterTaking = () => {
      throw new TierUnavailableError("redis leaseReadAcquire failed: timed out after 500 ms");
    };
    leases.failingReleases = 2;
    await expect(engine.getOrLease("ns", "k", 30_000, 0)).rejects.toThrow(/timed out/);
    await new Promise((resolve) => setTimeout(resolve, 400)); // retries after 50 and 100 ms
    expect(leases.failingReleases).toBeLessThan(0);
    expect(leases.held.size).toBe(0);
  });
});
