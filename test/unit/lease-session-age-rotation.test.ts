import { describe, expect, it } from "vitest";
import { LeaseSession } from "../../client/lease-session.js";
import { fakeTransport, track } from "../helpers/fake-lease-transport.js";

const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A call queued on a stream before READY (only one call goes before READY) is stranded when the stream reaches
 * maxStreamAgeMs before READY and a later call rotates it in #open(): #open ends the old stream's requests
 * (closing = true) but, unlike rotate(), does not move its waiting calls. At READY #sendWaiting returns at once
 * (closing), so the waiting call is neither sent nor sent unary: it hangs until its own deadline, although both
 * streams are READY with room to spare.
 */
describe("age rotation (#open) with a call waiting for READY", () => {
  it("the waiting call is sent (on a stream or unary) once the server is READY, not left to its deadline", async () => {
    const { transport, stream, unary } = fakeTransport();
    const session = new LeaseSession(transport, { maxStreamAgeMs: 50 });
    const get = (key: string, timeoutMs: number) => track(session.call("getOrLease", { namespace: "ns", key }, timeoutMs));
    const a = get("a", 10_000);
    const b = get("b", 1_500);
    await settle();
    expect(stream(0).sentIds).toEqual([1]); // b waits for READY
    await sleep(80); // the stream passes maxStreamAgeMs before READY (e.g. a slow connect)
    const c = get("c", 10_000); // opens stream 1, ends stream 0's side
    await settle();
    stream(0).ready(8);
    stream(1).ready(8);
    await settle();
    stream(0).answer(1);
    await settle();
    await sleep(300);
    const bWhere = { onStream0: stream(0).sent.some((r) => r.call?.value?.key === "b"), onStream1: stream(1).sent.some((r) => r.call?.value?.key === "b"), unary: unary.some((u) => u.key === "b") };
    const onStream1 = stream(1).sent.find((r) => r.call?.value?.key === "b");
    if (onStream1) stream(1).answer(Number(onStream1.id));
    await sleep(1_400); // b's deadline passes
    const snapshot = { a: a.outcome, b: b.outcome.split(":")[0], bWhere };
    session.close();
    stream(0).end();
    stream(1).end();
    await settle();
    void c;
    expect(snapshot.a).toBe("answer 1");
    expect(snapshot.b, JSON.stringify(snapshot)).not.toBe("DEADLINE_EXCEEDED");
    expect(bWhere.onStream0 || bWhere.onStream1 || bWhere.unary, JSON.stringify(snapshot)).toBe(true);
  }, 10_000);
});
