import { describe, expect, it, vi } from "vitest";
import { LeaseSession } from "../../client/lease-session.js";
import { fakeTimersWithoutLeaks, settle } from "../helpers/fake-timers-no-leaks.js";
import { fakeTransport, track } from "../helpers/fake-lease-transport.js";

fakeTimersWithoutLeaks();

describe("calls queued before READY beyond max_in_flight", () => {
  it("go unary when the stream has no room for them, as calls made after READY do, instead of waiting behind calls that may wait for leases until their deadline", async () => {
    const { transport, unary, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    // A burst on a fresh stream (first use, or after idleMs): 2 lease waits and a read of a cached key, same tick.
    const waitA = track(session.call("getOrLease", { namespace: "ns", key: "leased-a", waitMs: 20_000 }, 25_000));
    const waitB = track(session.call("getOrLease", { namespace: "ns", key: "leased-b", waitMs: 20_000 }, 25_000));
    const cached = track(session.call("getOrLease", { namespace: "ns", key: "cached" }, 5_000));
    await settle();
    stream(0).ready(2); // the server reads 2 at once; the two lease waits take both places and never answer within 5 s
    await settle();
    expect(stream(0).sentIds).toEqual([1, 2]);
    // A call made now, after READY, goes unary at once (the stream is full):
    const later = track(session.call("getOrLease", { namespace: "ns", key: "cached-later" }, 5_000));
    await settle();
    expect(later.outcome).toBe("unary cached-later");
    await vi.advanceTimersByTimeAsync(5_000);
    const seen = { cached: cached.outcome, unary: unary.map((u) => u.key) };
    stream(0).answer(1);
    stream(0).answer(2);
    await settle();
    expect([waitA.outcome, waitB.outcome]).toEqual(["answer 1", "answer 2"]);
    session.close();
    stream(0).end();
    await settle();
    // ...but the one queued before READY waited behind the lease waits for its whole deadline:
    expect({ ...seen, unary: [...seen.unary].sort() }).toEqual({ cached: "unary cached", unary: ["cached", "cached-later"] });
  });
});
