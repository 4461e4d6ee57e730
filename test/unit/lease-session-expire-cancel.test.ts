import { describe, expect, it, vi } from "vitest";
import { LeaseSession } from "../../client/lease-session.js";
import { fakeTimersWithoutLeaks, settle } from "../helpers/fake-timers-no-leaks.js";
import { fakeTransport, track } from "../helpers/fake-lease-transport.js";

fakeTimersWithoutLeaks();

describe("held: cancelling a stream whose every call expired never cancels a live call", () => {
  it.each(["before", "after"] as const)("a call made in the same tick, %s the last expiry, is carried by a stream that is not cancelled, and answered", async (order) => {
    const { transport, streams, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    let b: { readonly outcome: string } | undefined;
    const makeB = () => (b = track(session.call("getOrLease", { namespace: "ns", key: "b" }, 5_000)));
    if (order === "before") setTimeout(makeB, 100); // due at the same ms as a's deadline, and runs first
    const a = track(session.call("getOrLease", { namespace: "ns", key: "a" }, 100));
    if (order === "after") setTimeout(makeB, 100); // runs just after a's expiry
    await settle();
    stream(0).ready(8);
    await settle();
    await vi.advanceTimersByTimeAsync(100);
    await settle();
    expect(a.outcome).toMatch(/^DEADLINE_EXCEEDED/);
    const carrier = streams.find((s) => s.sent.some((r) => r.call?.value?.key === "b"))!;
    expect(carrier).toBeDefined();
    expect(carrier.options.signal?.aborted).toBe(false);
    if (carrier !== stream(0)) carrier.ready(8);
    await settle();
    const id = Number(carrier.sent.find((r) => r.call?.value?.key === "b")!.id);
    carrier.answer(id);
    await settle();
    expect(b!.outcome).toBe(`answer ${id}`);
    session.close();
    streams.forEach((s) => s.end());
    await settle();
  });
});
