import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it, vi } from "vitest";
import { LeaseSession, type LeaseSessionTransport } from "../../client/lease-session.js";
import type { CallOptions } from "../../core/grpc-adapter.js";
import { RpcError, Status, statusName } from "../../core/rpc-error.js";
import { LeaseSessionResponseSchema, type LeaseSessionRequestSchema, type LeaseSessionResponse } from "../../gen/tiercache/v1/cache_pb.js";
import { fakeTimersWithoutLeaks, settle } from "../helpers/fake-timers-no-leaks.js";

type RequestInit = MessageInitShape<typeof LeaseSessionRequestSchema>;

/** One stream the session opened: what it sent, and the answers the test gives. */
class FakeStream {
  readonly sent: RequestInit[] = [];
  requestsEnded = false;
  readonly #responses: LeaseSessionResponse[] = [];
  #end: { error?: unknown } | undefined;
  #wake: (() => void) | undefined;

  constructor(
    requests: AsyncIterable<RequestInit>,
    readonly options: CallOptions,
  ) {
    void (async () => {
      for await (const request of requests) this.sent.push(request);
      this.requestsEnded = true;
    })();
  }

  get sentIds(): number[] {
    return this.sent.map((r) => Number(r.id));
  }

  ready(maxInFlight: number, maxMessageBytes = 0): void {
    this.#push(create(LeaseSessionResponseSchema, { result: { case: "ready", value: { maxInFlight, maxMessageBytes } } }));
  }

  /** Answers the GetOrLease call `id` with a found value naming it. */
  answer(id: number): void {
    this.#push(create(LeaseSessionResponseSchema, { id: BigInt(id), result: { case: "getOrLease", value: { found: true, leaseToken: `answer ${id}` } } }));
  }

  /** Answers call `id` with a failure status; `notRun` as a server whose session calls are all taken. */
  refuse(id: number, code: number, notRun = false): void {
    this.#push(create(LeaseSessionResponseSchema, { id: BigInt(id), result: { case: "error", value: { code, message: `refused ${id}`, notRun } } }));
  }

  fail(error: unknown): void {
    this.#end = { error };
    this.#notify();
  }

  end(): void {
    this.#end = {};
    this.#notify();
  }

  #push(response: LeaseSessionResponse): void {
    this.#responses.push(response);
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async *responses(): AsyncIterable<LeaseSessionResponse> {
    for (;;) {
      const next = this.#responses.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.#end) {
        if ("error" in this.#end) throw this.#end.error;
        return;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
}

interface UnaryCall {
  name: string;
  key: string;
  options: CallOptions;
}

function fakeTransport() {
  const streams: FakeStream[] = [];
  const unary: UnaryCall[] = [];
  const unaryCall =
    (name: string) =>
    async (request: { key?: string }, options: CallOptions): Promise<never> => {
      unary.push({ name, key: request.key ?? "", options });
      return { found: true, leaseToken: `unary ${request.key}` } as never;
    };
  const transport: LeaseSessionTransport = {
    open(requests, options) {
      const stream = new FakeStream(requests, options);
      streams.push(stream);
      return stream.responses();
    },
    unary: { getOrLease: unaryCall("getOrLease"), set: unaryCall("set"), releaseLease: unaryCall("releaseLease") },
    callOptions: () => ({}),
  };
  const stream = (i: number) => {
    const s = streams[i];
    if (!s) throw new Error(`stream ${i} was never opened`);
    return s;
  };
  return { transport, streams, unary, stream };
}

/** Lets every pending promise callback run. */
/** A call's outcome once it settles: its lease token, or its status; "pending" until then. */
function track(call: Promise<unknown>): { readonly outcome: string } {
  const tracked = { outcome: "pending" };
  call.then(
    (value) => (tracked.outcome = String((value as { leaseToken?: string }).leaseToken)),
    (err: unknown) => (tracked.outcome = err instanceof RpcError ? `${statusName(err.code)}: ${err.details}` : `thrown ${String(err)}`),
  );
  return tracked;
}

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
    stream(0).answer(3);
    await settle();
    expect(calls.map((c) => c.outcome)).toEqual(["pending", "pending", "answer 3", "pending", "pending"]);
    expect(stream(0).sentIds).toEqual([1, 2, 3, 4]);
    stream(0).answer(1);
    stream(0).answer(2);
    await settle();
    expect(stream(0).sentIds).toEqual([1, 2, 3, 4, 5]);
    stream(0).answer(5);
    stream(0).answer(4);
    await settle();
    expect(calls.map((c) => c.outcome)).toEqual(["answer 1", "answer 2", "answer 3", "answer 4", "answer 5"]);
    expect(stream(0).sent.map((r) => r.call?.value?.key)).toEqual(["a", "b", "c", "d", "e"]);
    session.close();
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
    const big = track(session.call("set", { namespace: "ns", key: "big", value: new Uint8Array(8 * 1024) }, 5000));
    const fits = track(session.call("set", { namespace: "ns", key: "fits", value: new Uint8Array(4 * 1024) }, 5000));
    await settle();
    expect(big.outcome).toBe("unary big");
    expect(unary.map((u) => u.key)).toEqual(["big"]);
    expect(stream(0).sent.map((r) => r.call?.value?.key)).toEqual(["first", "fits"]);
    expect(fits.outcome).toBe("pending");
    session.close();
    stream(0).end();
    await settle();
  });

  it("rejects sent calls UNAVAILABLE (uncertain) when the stream fails, and sends the unsent ones on a new stream", async () => {
    const { transport, streams, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const calls = ["a", "b", "c", "d"].map((key) => get(session, key));
    await settle();
    stream(0).ready(2);
    await settle();
    expect(stream(0).sentIds).toEqual([1, 2]);
    stream(0).fail(new RpcError(Status.UNAVAILABLE, "connection reset"));
    await settle();
    expect(calls[0]!.outcome).toMatch(/^UNAVAILABLE: .*may or may not have taken effect.*connection reset/);
    expect(calls[1]!.outcome).toMatch(/^UNAVAILABLE: .*may or may not have taken effect/);
    expect(streams).toHaveLength(2);
    stream(1).ready(2);
    await settle();
    expect(stream(1).sent.map((r) => r.call?.value?.key)).toEqual(["c", "d"]);
    for (const r of stream(1).sent) stream(1).answer(Number(r.id));
    await settle();
    expect(calls.slice(2).map((c) => c.outcome)).toEqual(stream(1).sent.map((r) => `answer ${r.id}`));
    session.close();
  });

  it("rejects every call at once, UNAVAILABLE, when the server cannot be reached (streams fail before READY), opening no stream per waiting call", async () => {
    const { transport, streams, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const first = ["a", "b", "c"].map((key) => get(session, key));
    await settle();
    stream(0).ready(1);
    await settle();
    stream(0).fail(new RpcError(Status.UNAVAILABLE, "connection reset")); // the server died: b and c go on a new stream
    await settle();
    expect(streams).toHaveLength(2);
    stream(1).fail(new RpcError(Status.UNAVAILABLE, "connection refused")); // no server there
    await settle();
    expect(first.map((c) => c.outcome.split(":")[0])).toEqual(["UNAVAILABLE", "UNAVAILABLE", "UNAVAILABLE"]);
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
    expect(streams).toHaveLength(3);
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

  it("sends GetOrLease calls unary once READY says the server may send messages larger than the client reads; Sets stay on the stream", async () => {
    const { transport, unary, stream } = fakeTransport();
    const session = new LeaseSession({ ...transport, maxReceiveMessageBytes: 1024 * 1024 });
    const first = get(session, "first");
    const waiting = get(session, "waiting");
    await settle();
    expect(stream(0).sentIds).toEqual([1]); // before READY: the limit is not known, and one call is in flight
    stream(0).ready(8, 2 * 1024 * 1024);
    await settle();
    expect(waiting.outcome).toBe("unary waiting");
    const later = get(session, "later");
    const set = track(session.call("set", { namespace: "ns", key: "s", value: new Uint8Array(10) }, 5000));
    await settle();
    expect(later.outcome).toBe("unary later");
    expect(unary.map((u) => u.key)).toEqual(["waiting", "later"]);
    expect(stream(0).sent.map((r) => r.call?.value?.key)).toEqual(["first", "s"]);
    stream(0).answer(1);
    await settle();
    expect(first.outcome).toBe("answer 1");
    expect(set.outcome).toBe("pending");
    session.close();
    stream(0).end();
    await settle();
  });

  it("counts a sent call whose caller got DEADLINE_EXCEEDED until the server answers it, so it never sends more than the server reads at once", async () => {
    const { transport, unary, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const first = get(session, "first", 100);
    await settle();
    stream(0).ready(1);
    await settle();
    await vi.advanceTimersByTimeAsync(100);
    expect(first.outcome).toMatch(/^DEADLINE_EXCEEDED/);
    const second = get(session, "second");
    await settle();
    expect(second.outcome).toBe("unary second"); // the server still holds "first": no room on the stream
    expect(stream(0).sentIds).toEqual([1]);
    stream(0).refuse(1, Status.DEADLINE_EXCEEDED); // the server's answer at its own deadline
    await settle();
    expect(first.outcome).toMatch(/^DEADLINE_EXCEEDED: getOrLease did not finish/);
    const third = get(session, "third");
    await settle();
    expect(stream(0).sentIds).toEqual([1, 2]);
    expect(unary.map((u) => u.key)).toEqual(["second"]);
    stream(0).answer(2);
    await settle();
    expect(third.outcome).toBe("answer 2");
    session.close();
    stream(0).end();
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
    const small = track(session.call("set", { namespace: "ns", key: "small", value: new Uint8Array(64 * 1024 - 1) }, 5000));
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

  it("rejects sent calls UNAVAILABLE when the server ends the stream without answering them", async () => {
    const { transport, stream } = fakeTransport();
    const session = new LeaseSession(transport);
    const call = get(session, "a");
    await settle();
    stream(0).ready(4);
    stream(0).end();
    await settle();
    expect(call.outcome).toMatch(/^UNAVAILABLE: .*may or may not have taken effect/);
    session.close();
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
