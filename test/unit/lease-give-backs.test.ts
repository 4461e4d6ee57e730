import { describe, expect, it } from "vitest";
import { LeaseGiveBacks } from "../../server/engine/lease-give-backs.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A release that fails `failures` times, then ends the lease (true) once. */
function flakyRelease(failures: number) {
  const calls: string[] = [];
  let left = failures;
  let held = true;
  const release = async (_namespace: string, key: string, token: string) => {
    calls.push(`${key}:${token}`);
    if (left-- > 0) throw new Error("redis leaseRelease failed: timed out");
    const ended = held;
    held = false;
    return ended;
  };
  return { release, calls };
}

describe("LeaseGiveBacks: shared leases nobody will use are given back, however long Redis takes to answer", () => {
  it("a give-back that fails is tried again until one gets through, and the release is announced once", async () => {
    const { release, calls } = flakyRelease(3);
    const released: string[] = [];
    const giveBacks = new LeaseGiveBacks(release, (namespace, key) => released.push(`${namespace}/${key}`), { firstPauseMs: 5, maxPauseMs: 20 });
    giveBacks.giveBack("ns", "k", "t1", 10_000);
    await sleep(200);
    expect(calls).toEqual(["k:t1", "k:t1", "k:t1", "k:t1"]);
    expect(released).toEqual(["ns/k"]);
    expect(giveBacks.waiting).toBe(0);
  });

  it("stops once the lease would have lapsed by itself", async () => {
    const { release, calls } = flakyRelease(Infinity);
    const giveBacks = new LeaseGiveBacks(release, () => {}, { firstPauseMs: 10, maxPauseMs: 10 });
    giveBacks.giveBack("ns", "k", "t1", 55);
    await sleep(200);
    expect(calls.length).toBeGreaterThanOrEqual(2); // the first try, and at least the retry it scheduled
    expect(calls.length).toBeLessThanOrEqual(6); // none scheduled past the lapse: 0, 10, …, 50 ms at most
    const settled = calls.length;
    await sleep(100);
    expect(calls.length).toBe(settled);
    expect(giveBacks.waiting).toBe(0);
  });

  it("holds at most maxWaiting retries at once: past it a failed give-back is left to lapse", async () => {
    const { release, calls } = flakyRelease(Infinity);
    const giveBacks = new LeaseGiveBacks(release, () => {}, { firstPauseMs: 50, maxWaiting: 2 });
    for (let i = 0; i < 5; i++) giveBacks.giveBack("ns", `k${i}`, `t${i}`, 10_000);
    await sleep(10);
    expect(calls.length).toBe(5);
    expect(giveBacks.waiting).toBe(2);
    giveBacks.close();
    await sleep(300);
    expect(giveBacks.waiting).toBe(0);
    expect(calls.length).toBe(7); // the two waiting ones tried once more, then stopped: closed
  });
});
