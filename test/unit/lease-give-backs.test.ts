import { describe, expect, it } from "vitest";
import { LeaseGiveBacks } from "../../server/engine/lease-give-backs.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Shared leases whose release fails while `down`; `held` are the tokens holding a lease. */
function sharedLeases(held: string[]) {
  const state = { down: true, calls: 0, held: new Set(held) };
  const release = async (_namespace: string, _key: string, token: string) => {
    state.calls++;
    if (state.down) throw new Error("redis leaseRelease failed: circuit breaker open");
    return state.held.delete(token);
  };
  return { state, release };
}

describe("LeaseGiveBacks: shared leases nobody will use are given back once Redis answers, however long that takes", () => {
  it("a give-back that fails waits until Redis answers, with no time limit, and the lease it ends is announced once", async () => {
    const { state, release } = sharedLeases(["t1"]);
    const released: string[] = [];
    const giveBacks = new LeaseGiveBacks(release, (namespace, key) => released.push(`${namespace}/${key}`), { firstPauseMs: 5, maxPauseMs: 20 });
    giveBacks.giveBack("ns", "k", "t1");
    await sleep(300); // longer than any lease of this test would last: it still waits (the request it undoes may run later)
    expect(giveBacks.waiting).toBe(1);
    state.down = false;
    await sleep(60);
    expect(state.held.size).toBe(0);
    expect(released).toEqual(["ns/k"]);
    expect(giveBacks.waiting).toBe(0);
  });

  it("while Redis does not answer, one waiting give-back is tried per pause however many wait; once it is answered the rest go at once", async () => {
    const tokens = Array.from({ length: 200 }, (_, i) => `t${i}`);
    const { state, release } = sharedLeases(tokens);
    const giveBacks = new LeaseGiveBacks(release, () => {}, { firstPauseMs: 10, maxPauseMs: 40 });
    tokens.forEach((token, i) => giveBacks.giveBack("ns", `k${i}`, token));
    const firstTries = state.calls;
    expect(firstTries).toBe(200); // each tried at once: none was waiting yet
    await sleep(400);
    expect(state.calls - firstTries).toBeGreaterThanOrEqual(2);
    expect(state.calls - firstTries).toBeLessThanOrEqual(15); // pauses of 10, 20, 40, 40… ms: one call each, not 200
    expect(giveBacks.waiting).toBe(200);
    state.down = false;
    await sleep(100);
    expect(giveBacks.waiting).toBe(0);
    expect(state.held.size).toBe(0);
  });

  it("a give-back made while others wait joins them without a call of its own", async () => {
    const { state, release } = sharedLeases(["t1", "t2"]);
    const giveBacks = new LeaseGiveBacks(release, () => {}, { firstPauseMs: 1000 });
    giveBacks.giveBack("ns", "a", "t1");
    await sleep(10);
    giveBacks.giveBack("ns", "b", "t2");
    await sleep(10);
    expect(state.calls).toBe(1);
    expect(giveBacks.waiting).toBe(2);
    giveBacks.close();
  });

  it("holds at most maxWaiting; close drops those waiting and stops", async () => {
    const { state, release } = sharedLeases([]);
    const giveBacks = new LeaseGiveBacks(release, () => {}, { firstPauseMs: 20, maxWaiting: 3 });
    for (let i = 0; i < 5; i++) giveBacks.giveBack("ns", `k${i}`, `t${i}`);
    await sleep(5);
    expect(giveBacks.waiting).toBe(3);
    giveBacks.close();
    const calls = state.calls;
    await sleep(100);
    expect(state.calls).toBe(calls);
    expect(giveBacks.waiting).toBe(0);
    giveBacks.giveBack("ns", "late", "t9");
    expect(state.calls).toBe(calls);
  });
});
