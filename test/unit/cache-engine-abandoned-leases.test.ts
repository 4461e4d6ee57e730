import { describe, expect, it } from "vitest";
import { TierUnavailableError } from "../../core/errors.js";
import type { CallScope, LeaseAttempt, SharedLeases } from "../../server/engine/durable-tier.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";
import { engineWith } from "../helpers/test-engine.js";

const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Shared leases held in a map; `acquire` can be made to take effect and still fail, as a Redis call that timed out after it ran. */
class FakeSharedLeases implements SharedLeases {
  readonly held = new Map<string, string>();
  /** Runs after the lease was taken, before acquire answers: throw to fail the call, or end the caller's call. */
  afterTaking: ((scope: CallScope | undefined) => void) | undefined;

  async acquire(namespace: string, key: string, token: string, _durationMs: number, _unlessFresh: boolean, scope?: CallScope): Promise<LeaseAttempt> {
    const id = `${namespace}\u0000${key}`;
    if (this.held.has(id)) return { acquired: false, heldForMs: 1000 };
    this.held.set(id, token);
    this.afterTaking?.(scope);
    return { acquired: true };
  }

  async release(namespace: string, key: string, token: string): Promise<boolean> {
    const id = `${namespace}\u0000${key}`;
    if (this.held.get(id) !== token) return false;
    this.held.delete(id);
    return true;
  }

  async setFenced(): Promise<boolean> {
    return true;
  }
}

function setup() {
  const clock = fakeClock();
  const durable = new FakeDurableTier(clock.now);
  const leases = new FakeSharedLeases();
  Object.assign(durable, { leases });
  return { engine: engineWith(clock, durable), leases };
}

const timedOut = () => {
  throw new TierUnavailableError("redis leaseAcquire failed: timed out after 199 ms");
};

describe("CacheEngine: GetOrLease leaves no lease that no caller holds the token of", () => {
  it("a lease request that timed out as the call's deadline passed (the cancel not yet seen) but took effect is given back", async () => {
    const { engine, leases } = setup();
    leases.afterTaking = timedOut;
    const deadline = Date.now() - 1; // passed; nothing has cancelled the call yet
    await expect(engine.getOrLease("ns", "k", 30_000, 0, { deadline })).rejects.toThrow(/timed out/);
    await settle();
    expect(leases.held.size).toBe(0);
    leases.afterTaking = undefined;
    expect((await engine.getOrLease("ns", "k", 30_000, 0)).leaseToken).toBeDefined();
  });

  it("a lease request whose call was cancelled while it ran, and that took effect, is given back", async () => {
    const { engine, leases } = setup();
    const caller = new AbortController();
    leases.afterTaking = () => {
      caller.abort(new Error("client gone"));
      timedOut();
    };
    await expect(engine.getOrLease("ns", "k", 30_000, 0, { signal: caller.signal })).rejects.toThrow(/timed out|client gone/);
    await settle();
    expect(leases.held.size).toBe(0);
    leases.afterTaking = undefined;
    expect((await engine.getOrLease("ns", "k", 30_000, 0)).leaseToken).toBeDefined();
  });

  it("a lease granted just as the call ended goes to nobody: no token, and the lease is given back", async () => {
    const { engine, leases } = setup();
    const caller = new AbortController();
    leases.afterTaking = () => caller.abort(new Error("client gone"));
    const result = await engine.getOrLease("ns", "k", 30_000, 0, { signal: caller.signal });
    expect(result.leaseToken).toBeUndefined();
    await settle();
    expect(leases.held.size).toBe(0);
    leases.afterTaking = undefined;
    expect((await engine.getOrLease("ns", "k", 30_000, 0)).leaseToken).toBeDefined();
  });

  it("a caller with time left whose lease request failed keeps computing under this instance's lease, as before", async () => {
    const { engine, leases } = setup();
    leases.afterTaking = timedOut;
    const result = await engine.getOrLease("ns", "k", 30_000, 0, { deadline: Date.now() + 10_000 });
    expect(result.leaseToken).toBeDefined();
    expect(leases.held.size).toBe(1); // the holder's fenced write or give-back ends it
  });

  it("a lease granted after the deadline by the wall clock, the call not cancelled yet, is still the caller's: its answer may yet be written (found by review)", async () => {
    const { engine, leases } = setup();
    const result = await engine.getOrLease("ns", "k", 30_000, 0, { deadline: Date.now() - 1 });
    expect(result.leaseToken).toBeDefined();
    expect(leases.held.size).toBe(1);
  });
});
