import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import { describe, expect, it, vi } from "vitest";
import { MAX_RECEIVE_HEADER } from "../../core/message-limits.js";
import { LeaseSession, type LeaseSessionTransport } from "../../client/lease-session.js";
import type { CallOptions } from "../../core/grpc-adapter.js";
import { RpcError, Status, statusName } from "../../core/rpc-error.js";
import { LeaseSessionResponseSchema, type LeaseSessionRequestSchema, type LeaseSessionResponse } from "../../gen/tiercache/v1/cache_pb.js";
import { fakeTimersWithoutLeaks, settle } from "../helpers/fake-timers-no-leaks.js";
import { fakeTransport, track } from "../helpers/fake-lease-transport.js";

type RequestInit = MessageInitShape<typeof LeaseSessionRequestSchema>;

fakeTimersWithoutLeaks();

const get = (session: LeaseSession, key: string, timeoutMs = 5000) => track(session.call("getOrLease", { namespace: "ns", key }, timeoutMs));

describe("LeaseSession (client)", () => {
  it("sends one call before READY and at most maxInFlight after, and matches answers to calls by id", async () => {
    const { transport, streams, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const calls = ["a", "b", "c", "d", "e"].map((key) => get(session, key));
    await settle();
    expect(streams).toHaveLength(1);
    expect(stream(0).sentIds).toEqual([1]);
    expect(stream(0).options.deadline).toBe(Infinity);
    stream(0).ready(3);
    await settle();
    expect(stream(0).sentIds).toEqual([1, 2, 3]);
    // d and e, queued before READY, find no room: they go unary rather than wait behind calls that may wait for leases.
    expect(calls.map((c) => c.outcome)).toEqual(["pending", "pending", "pending", "unary d", "unary e"]);
    stream(0).answer(3);
    await settle();
    expect(calls.map((c) => c.outcome)).toEqual(["pending", "pending", "answer 3", "unary d", "unary e"]);
    const f = get(session, "f");
    await settle();
    expect(stream(0).sentIds).toEqual([1, 2, 3, 6]);
    stream(0).answer(2);
    stream(0).answer(6);
    stream(0).answer(1);
    await settle();
    expect([...calls, f].map((c) => c.outcome)).toEqual(["answer 1", "answer 2", "answer 3", "unary d", "unary e", "answer 6"]);
    expect(stream(0).sent.map((r) => r.call?.value?.key)).toEqual(["a", "b", "c", "f"]);
    session.close();
    await vi.advanceTimersByTimeAsync(1000); // the server never ends the closed stream: the client cancels it
  });

  it("never sends a call whose deadline passes while it waits, rejecting it DEADLINE_EXCEEDED; a sent call times out too", async () => {
    const { transport, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const sent = get(session, "sent", 1000);
    const waits = get(session, "waits", 50);
    await settle();
    expect(stream(0).sentIds).toEqual([1]);
    await vi.advanceTimersByTimeAsync(50);
    expect(waits.outcome).toMatch(/^DEADLINE_EXCEEDED/);
    stream(0).ready(8);
    await settle();
    expect(stream(0).sentIds).toEqual([1]);
    expect(stream(0).sent[0]!.timeoutMs).toBe(1000);
    await vi.advanceTimersByTimeAsync(950);
    expect(sent.outcome).toMatch(/^DEADLINE_EXCEEDED/);
    stream(0).answer(1); // late: ignored
    await settle();
    expect(sent.outcome).toMatch(/^DEADLINE_EXCEEDED/);
    session.close();
  });

  it("rejects every call whose deadline passed, also those waiting behind a call that timed out at the same moment (none is left unsettled)", async () => {
    const { transport, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const calls = ["a", "b", "c"].map((key) => get(session, key, 1000));
    await settle();
    expect(stream(0).sentIds).toEqual([1]); // no READY: the others wait
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.map((c) => c.outcome.split(":")[0])).toEqual(["DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED"]);
    expect(stream(0).sentIds).toEqual([1]);
    session.close();
    stream(0).end();
    await settle();
  });

  it("sends a call unary when the stream has no room for it, rather than queue it behind calls that may wait (a GetOrLease waiting for a lease)", async () => {
    const { transport, unary, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const first = get(session, "first");
    await settle();
    stream(0).ready(1);
    await settle();
    const second = get(session, "second");
    await settle();
    expect(second.outcome).toBe("unary second");
    expect(unary.map((u) => u.key)).toEqual(["second"]);
    stream(0).answer(1);
    await settle();
    expect(first.outcome).toBe("answer 1");
    const third = get(session, "third");
    await settle();
    expect(stream(0).sentIds).toEqual([1, 2]);
    stream(0).answer(2);
    await settle();
    expect(third.outcome).toBe("answer 2");
    session.close();
    stream(0).end();
    await settle();
  });

  it("sends a Set that could make a message over the server's limit (READY's max_message_bytes) unary", async () => {
    const { transport, unary, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const first = get(session, "first");
    await settle();
    stream(0).ready(8, 16 * 1024);
    stream(0).answer(1);
    await settle();
    expect(first.outcome).toBe("answer 1");
    const big = track(session.call("set", { namespace: "ns", key: "big", value: new Uint8Array(15 * 1024) }, 5000));
    const longKey = track(session.call("set", { namespace: "ns", key: "k".repeat(3000), value: new Uint8Array(8 * 1024) }, 5000));
    const fits = track(session.call("set", { namespace: "ns", key: "fits", value: new Uint8Array(12 * 1024) }, 5000));
    await settle();
    expect(big.outcome).toBe("unary big");
    expect(longKey.outcome).toBe(`unary ${"k".repeat(3000)}`); // 8 KiB of value, but 3,000 key characters may be 9,000 bytes
    expect(unary.map((u) => u.key)).toEqual(["big", "k".repeat(3000)]);
    expect(stream(0).sent.map((r) => r.call?.value?.key)).toEqual(["first", "fits"]);
    expect(fits.outcome).toBe("pending");
    session.close();
    stream(0).end();
    await settle();
  });

  it("rejects sent calls UNAVAILABLE (uncertain) when the stream fails, and the next call opens a new stream", async () => {
    const { transport, streams, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const calls = ["a", "b"].map((key) => get(session, key));
    await settle();
    stream(0).ready(2);
    await settle();
    expect(stream(0).sentIds).toEqual([1, 2]);
    stream(0).fail(new RpcError(Status.UNAVAILABLE, "connection reset"));
    await settle();
    expect(calls[0]!.outcome).toMatch(/^UNAVAILABLE: .*may or may not have taken effect.*connection reset/);
    expect(calls[1]!.outcome).toMatch(/^UNAVAILABLE: .*may or may not have taken effect/);
    const next = get(session, "c");
    await settle();
    expect(streams).toHaveLength(2);
    stream(1).ready(2);
    await settle();
    expect(stream(1).sent.map((r) => r.call?.value?.key)).toEqual(["c"]);
    stream(1).answer(Number(stream(1).sent[0]!.id));
    await settle();
    expect(next.outcome).toBe(`answer ${stream(1).sent[0]!.id}`);
    session.close();
    await vi.advanceTimersByTimeAsync(1000); // the server never ends the closed stream: the client cancels it
  });

  it("rejects every call at once, UNAVAILABLE, when the server cannot be reached (streams fail before READY), opening no stream per waiting call", async () => {
    const { transport, streams, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const first = ["a", "b", "c"].map((key) => get(session, key));
    await settle();
    stream(0).fail(new RpcError(Status.UNAVAILABLE, "connection refused")); // no server there
    await settle();
    expect(streams).toHaveLength(1);
    expect(first.map((c) => c.outcome.split(":")[0])).toEqual(["UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE"]);
    expect(first[0]!.outcome).toMatch(/may or may not have taken effect: .*connection refused/);
    expect(first[2]!.outcome).toMatch(/was not sent: .*connection refused/);

    const open = transport.open;
    transport.open = (requests, options) => {
      const responses = open(requests, options);
      streams.at(-1)!.fail(new RpcError(Status.UNAVAILABLE, "connection refused"));
      return responses;
    };
    const later = Array.from({ length: 50 }, (_, i) => get(session, `later${i}`));
    await settle();
    expect(later.map((c) => c.outcome.split(":")[0])).toEqual(later.map(() => "UNAVAILABLE"));
    expect(streams).toHaveLength(2);
    session.close();
  });

  it("fails a call at once, not at its deadline, when opening the stream throws", async () => {
    const { transport } = fakeTransport();
    transport.open = () => {
      throw new Error("Channel has been shut down");
    };
    const session = new LeaseSession(transport);
    const call = get(session, "a", 60_000);
    await settle();
    expect(call.outcome).toMatch(/^UNAVAILABLE: .*Channel has been shut down/);
    session.close();
  });

  it("holds a Set made before READY until READY, then sends it unary if it could exceed the server's limit (the stream and its other calls go on)", async () => {
    const { transport, unary, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const lease = get(session, "a");
    const set = track(session.call("set", { namespace: "ns", key: "big", value: new Uint8Array(20_000) }, 5000));
    await settle();
    expect(stream(0).sent.map((r) => r.call?.case)).toEqual(["getOrLease"]);
    stream(0).ready(8, 16 * 1024);
    await settle();
    expect(set.outcome).toBe("unary big");
    expect(unary.map((u) => u.key)).toEqual(["big"]);
    expect(stream(0).sent.map((r) => r.call?.case)).toEqual(["getOrLease"]);
    stream(0).answer(1);
    await settle();
    expect(lease.outcome).toBe("answer 1");
    session.close();
    stream(0).end();
    await settle();
  });

  it("tells the server the largest message it reads, in the stream's metadata, beside the caller's own metadata", async () => {
    const { transport, stream } = fakeTransport();
    const own = new Metadata();
    own.set("authorization", "Bearer t");
    const session = new LeaseSession({ ...transport, callOptions: () => ({ metadata: own }), maxReceiveMessageBytes: 1024 * 1024 });
    const first = get(session, "first");
    await settle();
    expect(stream(0).options.metadata?.get(MAX_RECEIVE_HEADER)).toEqual(["1048576"]);
    expect(stream(0).options.metadata?.get("authorization")).toEqual(["Bearer t"]);
    expect(own.get(MAX_RECEIVE_HEADER)).toEqual([]);
    stream(0).ready(8);
    stream(0).answer(1);
    await settle();
    expect(first.outcome).toBe("answer 1");
    session.close();
    stream(0).end();
    await settle();
  });

  it("counts a sent call whose caller got DEADLINE_EXCEEDED until the server answers it, so it never sends more than the server reads at once", async () => {
    const { transport, unary, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const live = get(session, "live", 5000);
    await settle();
    stream(0).ready(2);
    const first = get(session, "first", 100);
    await settle();
    expect(stream(0).sentIds).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(100);
    expect(first.outcome).toMatch(/^DEADLINE_EXCEEDED/);
    const second = get(session, "second");
    await settle();
    expect(second.outcome).toBe("unary second"); // the server still holds "first": no room on the stream
    expect(stream(0).sentIds).toEqual([1, 2]);
    stream(0).refuse(2, Status.DEADLINE_EXCEEDED); // the server's answer at its own deadline
    await settle();
    expect(first.outcome).toMatch(/^DEADLINE_EXCEEDED: getOrLease did not finish/);
    const third = get(session, "third");
    await settle();
    expect(stream(0).sentIds).toEqual([1, 2, 3]);
    expect(unary.map((u) => u.key)).toEqual(["second"]);
    stream(0).answer(3);
    stream(0).answer(1);
    await settle();
    expect([live.outcome, third.outcome]).toEqual(["answer 1", "answer 3"]);
    session.close();
    stream(0).end();
    await settle();
  });

  it("cancels a stream whose every call in flight was given up on (the server stops them; nothing runs later), and the next call opens a new one", async () => {
    const { transport, streams, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const first = get(session, "first", 100);
    await settle();
    stream(0).ready(4);
    await settle();
    expect(stream(0).options.signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(first.outcome).toMatch(/^DEADLINE_EXCEEDED/);
    expect(stream(0).options.signal?.aborted).toBe(true);
    stream(0).fail(new RpcError(Status.CANCELLED, "cancelled on client")); // as grpc-js ends a cancelled call
    const second = get(session, "second");
    await settle();
    expect(streams).toHaveLength(2);
    expect(stream(1).sentIds).toEqual([2]);
    stream(1).answer(2);
    await settle();
    expect([first.outcome.split(":")[0], second.outcome]).toEqual(["DEADLINE_EXCEEDED", "answer 2"]);
    session.close();
    stream(1).end();
    await settle();
  });

  it("runs a call the server did not run (not_run) as its unary call, within what is left of its deadline; another refusal rejects with its status", async () => {
    const { transport, unary, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const busy = get(session, "busy", 1000);
    await settle();
    stream(0).ready(8);
    const refused = get(session, "refused", 1000);
    await settle();
    await vi.advanceTimersByTimeAsync(300);
    stream(0).refuse(1, Status.RESOURCE_EXHAUSTED, true);
    stream(0).refuse(2, Status.RESOURCE_EXHAUSTED, false);
    await settle();
    expect(busy.outcome).toBe("unary busy");
    expect(unary).toHaveLength(1);
    expect(unary[0]!.options.timeoutMs).toBe(700);
    expect(refused.outcome).toBe("RESOURCE_EXHAUSTED: refused 2");
    session.close();
    stream(0).end();
    await settle();
  });

  it("sends a Set of a large value (64 KiB or more) as a unary call, and a smaller one on the stream", async () => {
    const { transport, unary, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const large = track(session.call("set", { namespace: "ns", key: "large", value: new Uint8Array(64 * 1024) }, 5000));
    const small = track(session.call("set", { namespace: "ns", key: "small", value: new Uint8Array(60 * 1024) }, 5000));
    await settle();
    expect(large.outcome).toBe("unary large");
    expect(unary.map((u) => u.key)).toEqual(["large"]);
    expect(stream(0).sent).toEqual([]); // no Set before READY: the server's message limit is not known yet
    stream(0).ready(8);
    await settle();
    expect(stream(0).sent.map((r) => r.call?.value?.key)).toEqual(["small"]);
    expect(small.outcome).toBe("pending");
    session.close();
    stream(0).end();
    await settle();
  });

  it("sends unary a call that a stream the server ended OK left unanswered: the server ends a stream OK only once it answered every call it read", async () => {
    const { transport, streams, unary, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const call = get(session, "a");
    await settle();
    stream(0).ready(4);
    stream(0).end();
    await settle();
    expect(call.outcome).toBe("unary a");
    expect(unary.map((u) => u.key)).toEqual(["a"]);
    expect(streams).toHaveLength(1);
    session.close();
  });

  it("cancels a stream whose request side is ended and that carries nothing, when the server does not end it within a second", async () => {
    const { transport, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const call = get(session, "a");
    await settle();
    stream(0).ready(4);
    stream(0).answer(1);
    await settle();
    expect(call.outcome).toBe("answer 1");
    session.close();
    await settle();
    expect(stream(0).requestsEnded).toBe(true);
    await vi.advanceTimersByTimeAsync(999);
    expect(stream(0).options.signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(stream(0).options.signal?.aborted).toBe(true);
  });

  it("against a server without LeaseSession (UNIMPLEMENTED) runs the calls in flight and every later call unary, with their deadlines", async () => {
    const { transport, streams, unary, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const calls = [get(session, "a", 3000), get(session, "b", 3000)];
    await settle();
    await vi.advanceTimersByTimeAsync(1000);
    stream(0).fail(new RpcError(Status.UNIMPLEMENTED, "unknown method LeaseSession"));
    await settle();
    expect(session.unsupported).toBe(true);
    expect(calls.map((c) => c.outcome)).toEqual(["unary a", "unary b"]);
    expect(unary.map((u) => [u.name, u.key, u.options.timeoutMs]).sort()).toEqual([
      ["getOrLease", "a", 2000],
      ["getOrLease", "b", 2000],
    ]);
    const later = track(session.call("set", { namespace: "ns", key: "later" }, 700));
    await settle();
    expect(later.outcome).toBe("unary later");
    expect(unary.at(-1)).toMatchObject({ name: "set", key: "later", options: { timeoutMs: 700 } });
    expect(streams).toHaveLength(1);
  });

  it.each([Status.UNAUTHENTICATED, Status.PERMISSION_DENIED])("rejects every call with a stream refused with %s, opening no stream per waiting call", async (code) => {
    const { transport, streams } = fakeTransport();
    const open = transport.open;
    transport.open = (requests, options) => {
      const responses = open(requests, options);
      streams.at(-1)!.fail(new RpcError(code, "refused"));
      return responses;
    };
    const session = new LeaseSession(transport);
    const calls = ["a", "b", "c", "d"].map((key) => get(session, key));
    await settle();
    expect(calls.map((c) => c.outcome)).toEqual(Array(4).fill(`${statusName(code)}: refused`));
    expect(streams).toHaveLength(1);
    session.close();
  });

  it("ends the request stream after idleMs without a call, and a call made then goes on a new stream", async () => {
    const { transport, streams, stream } = fakeTransport();
    const session = new LeaseSession(transport, { idleMs: 100 });
    const first = get(session, "a");
    await settle();
    stream(0).ready(4);
    stream(0).answer(1);
    await settle();
    expect(first.outcome).toBe("answer 1");
    await vi.advanceTimersByTimeAsync(99);
    expect(stream(0).requestsEnded).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await settle();
    expect(stream(0).requestsEnded).toBe(true);

    // The server has not ended its side yet when the next call comes.
    const next = get(session, "b");
    await settle();
    stream(0).end();
    await settle();
    expect(streams).toHaveLength(2);
    expect(stream(1).sent.map((r) => r.call?.value?.key)).toEqual(["b"]);
    stream(1).ready(4);
    stream(1).answer(Number(stream(1).sent[0]!.id));
    await settle();
    expect(next.outcome).toMatch(/^answer /);
    session.close();
    await vi.advanceTimersByTimeAsync(1000); // the server never ends the closed stream: the client cancels it
  });

  it("keeps the stream while a call is in flight however long it takes", async () => {
    const { transport, stream } = fakeTransport();
    const session = new LeaseSession(transport, { idleMs: 100 });
    const call = get(session, "a", 10_000);
    await settle();
    stream(0).ready(4);
    await vi.advanceTimersByTimeAsync(5000);
    expect(stream(0).requestsEnded).toBe(false);
    stream(0).answer(1);
    await settle();
    expect(call.outcome).toBe("answer 1");
    session.close();
    await vi.advanceTimersByTimeAsync(1000); // the server never ends the closed stream: the client cancels it
  });

  it("after close() lets calls in flight finish on the stream, ends it, and runs later calls unary", async () => {
    const { transport, streams, unary, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const inFlight = get(session, "a");
    await settle();
    stream(0).ready(4);
    session.close();
    await settle();
    expect(stream(0).requestsEnded).toBe(true);
    const later = get(session, "b");
    await settle();
    expect(later.outcome).toBe("unary b");
    expect(unary.map((u) => u.key)).toEqual(["b"]);
    stream(0).answer(1);
    stream(0).end();
    await settle();
    expect(inFlight.outcome).toBe("answer 1");
    expect(streams).toHaveLength(1);
  });

  it("after close() sends no waiting call on the closing stream: it goes unary", async () => {
    const { transport, unary, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const sent = get(session, "a");
    const waiting = get(session, "b");
    await settle();
    expect(stream(0).sentIds).toEqual([1]);
    session.close();
    await settle();
    stream(0).ready(4);
    stream(0).answer(1);
    await settle();
    stream(0).end();
    await settle();
    expect(stream(0).sentIds).toEqual([1]);
    expect([sent.outcome, waiting.outcome]).toEqual(["answer 1", "unary b"]);
    expect(unary.map((u) => u.key)).toEqual(["b"]);
  });
});
