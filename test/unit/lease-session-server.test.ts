import { create, type DescMethod } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import { describe, expect, it, vi } from "vitest";
import { MAX_RECEIVE_HEADER } from "../../core/message-limits.js";
import type { CallContext } from "../../core/grpc-adapter.js";
import { RpcError, Status, statusName } from "../../core/rpc-error.js";
import { CacheService, LeaseSessionRequestSchema, type LeaseSessionRequest, type LeaseSessionResponseSchema } from "../../gen/tiercache/v1/cache_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { DRAIN_LINGER_MS, leaseSession, type LeaseSessionCalls, type LeaseSessionOptions } from "../../server/rpc/lease-session.js";
import { callContextOf } from "../helpers/call-context.js";
import { fakeTimersWithoutLeaks, settle } from "../helpers/fake-timers-no-leaks.js";

type Response = MessageInitShape<typeof LeaseSessionResponseSchema>;

/** Request messages the test hands to the session one by one; counts what the session read. */
class Requests implements AsyncIterable<LeaseSessionRequest> {
  readonly #items: LeaseSessionRequest[] = [];
  #ended = false;
  #wake: (() => void) | undefined;
  read = 0;
  returned = false;

  push(...items: LeaseSessionRequest[]): void {
    this.#items.push(...items);
    this.#notify();
  }

  end(): void {
    this.#ended = true;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<LeaseSessionRequest> {
    return {
      next: async () => {
        for (;;) {
          if (this.returned) return { done: true, value: undefined };
          const item = this.#items.shift();
          if (item !== undefined) {
            this.read++;
            return { done: false, value: item };
          }
          if (this.#ended) return { done: true, value: undefined };
          await new Promise<void>((resolve) => (this.#wake = resolve));
        }
      },
      return: async () => {
        this.returned = true;
        this.#notify();
        return { done: true, value: undefined };
      },
    };
  }
}

/** A GetOrLease call on key `k<id>`. */
function getOrLease(id: number, timeoutMs = 0, namespace = "ns"): LeaseSessionRequest {
  return create(LeaseSessionRequestSchema, { id: BigInt(id), timeoutMs, call: { case: "getOrLease", value: { namespace, key: `k${id}`, leaseMs: 1000 } } });
}

interface Started {
  key: string;
  context: CallContext;
  resolve(): void;
  reject(error: unknown): void;
}

/** Handlers that each start a call the test settles by hand, keyed by the request's key. */
function fakeCalls() {
  const started = new Map<string, Started>();
  let running = 0;
  let mostRunning = 0;
  const start = (key: string, context: CallContext) =>
    new Promise<void>((resolve, reject) => {
      running++;
      mostRunning = Math.max(mostRunning, running);
      started.set(key, { key, context, resolve, reject });
    }).finally(() => running--);
  const calls: LeaseSessionCalls = {
    getOrLease: async (request, context) => {
      await start(request.key, context);
      return { found: true, value: new TextEncoder().encode(request.key), contentType: "text/plain" };
    },
    set: async (request, context) => {
      await start(request.key, context);
      return {};
    },
    releaseLease: async (request, context) => {
      await start(request.key, context);
      return { released: true };
    },
  };
  return {
    calls,
    started,
    get: (key: string) => {
      const call = started.get(key);
      if (!call) throw new Error(`${key} never started`);
      return call;
    },
    get running() {
      return running;
    },
    get mostRunning() {
      return mostRunning;
    },
  };
}

/** Lets every pending promise callback (and the session's reader) run. */
const mapError = (error: unknown) => ({ code: Status.INTERNAL, details: `mapped: ${error instanceof Error ? error.message : String(error)}` });

function open(options: Partial<LeaseSessionOptions> & { signal?: AbortSignal } = {}) {
  const requests = new Requests();
  const cancel = new AbortController();
  const stream = callContextOf(options.signal ?? cancel.signal);
  const fake = fakeCalls();
  const session = leaseSession(requests, stream, fake.calls, { maxInFlight: 4, maxCallMs: 60_000, mapError, ...options }) as AsyncGenerator<Response, void, undefined>;
  return { requests, stream, cancel, fake, session };
}

/** `id: result` of an answer, `id: STATUS message` of a failed one. */
function describeAnswer(response: Response | void): string {
  if (response === undefined) return "end";
  const result = response.result!;
  const id = response.id ?? 0n;
  if (result.case === "error") return `${id}: ${statusName(result.value.code!)} ${result.value.message}`;
  return `${id}: ${result.case}`;
}

async function nextAnswer(session: AsyncGenerator<Response, void, undefined>): Promise<string> {
  const next = await session.next();
  return next.done ? "end" : describeAnswer(next.value);
}

fakeTimersWithoutLeaks();

describe("leaseSession (server)", () => {
  it("answers READY with maxInFlight first, before it reads any call", async () => {
    const { requests, fake, session } = open({ maxInFlight: 7 });
    requests.push(getOrLease(1));
    const first = await session.next();
    expect(first.value).toEqual({ result: { case: "ready", value: { maxInFlight: 7 } } });
    expect(requests.read).toBe(0);
    const answer = session.next();
    await settle();
    expect(requests.read).toBe(1);
    fake.get("k1").resolve();
    expect(describeAnswer((await answer).value)).toBe("1: getOrLease");
    requests.end();
    expect(await nextAnswer(session)).toBe("end");
  });

  it("runs at most maxInFlight calls at once, counting each until its answer is written (the consumer came back for the next), and answers in the order calls finish", async () => {
    const { requests, fake, session } = open({ maxInFlight: 2 });
    await session.next(); // READY
    requests.push(...[1, 2, 3, 4, 5].map((id) => getOrLease(id)));
    const first = session.next();
    await settle();
    expect([...fake.started.keys()]).toEqual(["k1", "k2"]);
    expect(requests.read).toBe(2);

    fake.get("k2").resolve(); // out of order: k2 finishes first
    expect(await nextAnswer({ next: () => first } as AsyncGenerator<Response, void, undefined>)).toBe("2: getOrLease");
    await settle();
    expect([...fake.started.keys()]).toEqual(["k1", "k2"]); // handed over, not yet written
    const second = session.next();
    await settle();
    expect([...fake.started.keys()]).toEqual(["k1", "k2", "k3"]);

    // The consumer is slow: answers of k1 and k3 wait in the session and still hold their places.
    fake.get("k1").resolve();
    fake.get("k3").resolve();
    await settle();
    expect(await nextAnswer({ next: () => second } as AsyncGenerator<Response, void, undefined>)).toBe("1: getOrLease");
    expect([...fake.started.keys()]).toEqual(["k1", "k2", "k3"]);
    expect(requests.read).toBe(3);
    expect(fake.running).toBe(0);

    expect(await nextAnswer(session)).toBe("3: getOrLease");
    await settle();
    expect([...fake.started.keys()]).toEqual(["k1", "k2", "k3", "k4"]);
    fake.get("k4").resolve();
    expect(await nextAnswer(session)).toBe("4: getOrLease");
    await settle();
    expect([...fake.started.keys()]).toEqual(["k1", "k2", "k3", "k4", "k5"]);
    expect(fake.mostRunning).toBe(2);

    fake.get("k5").resolve();
    requests.end();
    expect(await nextAnswer(session)).toBe("5: getOrLease");
    expect(await nextAnswer(session)).toBe("end");
  });

  it("answers a call whose handler never settles DEADLINE_EXCEEDED at its timeout_ms, and reads the next call once that answer is written, though the handler runs on", async () => {
    const { requests, fake, session } = open({ maxInFlight: 1 });
    await session.next();
    requests.push(getOrLease(1, 100), getOrLease(2, 100));
    const answer = session.next();
    await settle();
    const stuck = fake.get("k1");
    expect(stuck.context.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(99);
    expect(stuck.context.signal.aborted).toBe(false);
    expect(requests.read).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(describeAnswer((await answer).value)).toMatch(/^1: DEADLINE_EXCEEDED /);
    expect(RpcError.is(stuck.context.signal.reason, Status.DEADLINE_EXCEEDED)).toBe(true);
    const second = session.next(); // the answer is written: the client, which counts id 1 until then, may send another
    await settle();
    expect(requests.read).toBe(2);
    expect(fake.started.has("k2")).toBe(true);
    stuck.resolve(); // settles late: no second answer for id 1
    fake.get("k2").resolve();
    requests.end();
    expect(describeAnswer((await second).value)).toBe("2: getOrLease");
    expect(await nextAnswer(session)).toBe("end");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("gives a call with timeout_ms 0, or over maxCallMs, the deadline maxCallMs", async () => {
    const { requests, fake, session } = open({ maxCallMs: 1000 });
    await session.next();
    const now = Date.now();
    requests.push(getOrLease(1, 0), getOrLease(2, 5000), getOrLease(3, 200), getOrLease(4, 1000));
    const answer = session.next();
    await settle();
    expect(["k1", "k2", "k3", "k4"].map((key) => fake.get(key).context.deadline - now)).toEqual([1000, 1000, 200, 1000]);
    await vi.advanceTimersByTimeAsync(200);
    expect(describeAnswer((await answer).value)).toMatch(/^3: DEADLINE_EXCEEDED/);
    expect(["k1", "k2", "k4"].map((key) => fake.get(key).context.signal.aborted)).toEqual([false, false, false]);
    await vi.advanceTimersByTimeAsync(800);
    const rest = [await nextAnswer(session), await nextAnswer(session), await nextAnswer(session)].sort();
    expect(rest.map((a) => a.split(" ")[0])).toEqual(["1: DEADLINE_EXCEEDED", "2: DEADLINE_EXCEEDED", "4: DEADLINE_EXCEEDED"].map((a) => a.split(" ")[0]));
    expect(rest.every((a) => a.includes("DEADLINE_EXCEEDED"))).toBe(true);
    for (const call of fake.started.values()) call.resolve();
    requests.end();
    expect(await nextAnswer(session)).toBe("end");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("answers a call whose id is in flight INVALID_ARGUMENT without running it, and a message holding no call INVALID_ARGUMENT; the stream goes on", async () => {
    const { requests, fake, session } = open();
    await session.next();
    const dup = create(LeaseSessionRequestSchema, { id: 1n, call: { case: "set", value: { namespace: "ns", key: "dup" } } });
    requests.push(getOrLease(1), dup, create(LeaseSessionRequestSchema, { id: 9n }));
    expect(await nextAnswer(session)).toMatch(/^1: INVALID_ARGUMENT .*already in flight/);
    expect(await nextAnswer(session)).toMatch(/^9: INVALID_ARGUMENT .*holds no call/);
    expect(fake.started.has("dup")).toBe(false);
    fake.get("k1").resolve();
    expect(await nextAnswer(session)).toBe("1: getOrLease");
    fake.started.clear();
    requests.push(getOrLease(1)); // answered: its id is free again
    await settle();
    fake.get("k1").resolve();
    expect(await nextAnswer(session)).toBe("1: getOrLease");
    requests.end();
    expect(await nextAnswer(session)).toBe("end");
  });

  it("answers a call whose handler fails with mapError's status (an RpcError keeps its own), thrown or rejected", async () => {
    const requests = new Requests();
    const calls: LeaseSessionCalls = {
      getOrLease: () => {
        throw new Error("thrown");
      },
      set: () => Promise.reject(new Error("rejected")),
      releaseLease: () => Promise.reject(new RpcError(Status.FAILED_PRECONDITION, "lease lost")),
    };
    const session = leaseSession(requests, callContextOf(new AbortController().signal), calls, {
      maxInFlight: 4,
      maxCallMs: 60_000,
      mapError: (error) => ({ code: Status.RESOURCE_EXHAUSTED, details: `mapped ${(error as Error).message}` }),
    });
    requests.push(
      getOrLease(1),
      create(LeaseSessionRequestSchema, { id: 2n, call: { case: "set", value: { namespace: "ns", key: "k" } } }),
      create(LeaseSessionRequestSchema, { id: 3n, call: { case: "releaseLease", value: { namespace: "ns", key: "k", leaseToken: "t" } } }),
    );
    requests.end();
    const answers: string[] = [];
    for await (const response of session) answers.push(describeAnswer(response));
    expect(answers.sort()).toEqual(["0: ready", "1: RESOURCE_EXHAUSTED mapped thrown", "2: RESOURCE_EXHAUSTED mapped rejected", "3: FAILED_PRECONDITION lease lost"]);
  });

  it("answers a GetOrLease whose answer would be over the client's receive limit (its header) RESOURCE_EXHAUSTED, and the stream goes on", async () => {
    const requests = new Requests();
    const metadata = new Metadata();
    metadata.set(MAX_RECEIVE_HEADER, "300");
    const fake = fakeCalls();
    const session = leaseSession(requests, callContextOf(new AbortController().signal, metadata), fake.calls, { maxInFlight: 4, maxCallMs: 60_000, mapError }) as AsyncGenerator<Response, void, undefined>;
    await session.next();
    const long = "x".repeat(400); // the fake answers with the key as the value: 400 bytes, over the client's 300
    requests.push(create(LeaseSessionRequestSchema, { id: 1n, call: { case: "getOrLease", value: { namespace: "ns", key: long, leaseMs: 1000 } } }), getOrLease(2));
    const answer = session.next();
    await settle();
    fake.get(long).resolve();
    expect(await nextAnswer({ next: () => answer } as AsyncGenerator<Response, void, undefined>)).toMatch(/^1: RESOURCE_EXHAUSTED the answer \(\d+ bytes\) is over the client's max receive message size \(300 bytes\)/);
    fake.get("k2").resolve();
    expect(await nextAnswer(session)).toBe("2: getOrLease");
    requests.end();
    expect(await nextAnswer(session)).toBe("end");
  });

  it("authorizes each call as its unary method with a context that names the stream; a refusal answers that call only", async () => {
    const seen: [string, string, CallContext | undefined][] = [];
    const authorize = (method: DescMethod, request: unknown, context: CallContext) => {
      const namespace = (request as { namespace: string }).namespace;
      seen.push([method.name, namespace, context.stream]);
      if (namespace === "forbidden") throw new RpcError(Status.PERMISSION_DENIED, "not yours");
    };
    const { requests, stream, fake, session } = open({ authorize });
    await session.next();
    requests.push(getOrLease(1), getOrLease(2, 0, "forbidden"), create(LeaseSessionRequestSchema, { id: 3n, call: { case: "set", value: { namespace: "ns", key: "k3" } } }));
    expect(await nextAnswer(session)).toBe("2: PERMISSION_DENIED not yours");
    expect(fake.started.has("k2")).toBe(false);
    fake.get("k1").resolve();
    fake.get("k3").resolve();
    requests.end();
    expect([await nextAnswer(session), await nextAnswer(session)].sort()).toEqual(["1: getOrLease", "3: set"]);
    expect(await nextAnswer(session)).toBe("end");
    expect(seen.map(([method, namespace]) => `${method} ${namespace}`)).toEqual(["GetOrLease ns", "GetOrLease forbidden", "Set ns"]);
    expect(seen.every(([, , s]) => s === stream)).toBe(true);
    expect(seen[0]![0]).toBe(CacheService.method.getOrLease.name);
  });

  it("on closing says draining, answers a call read after it UNAVAILABLE not_run without running it, answers the calls it runs, and ends once the client ends its side", async () => {
    const closing = new AbortController();
    const { requests, fake, session } = open({ closing: closing.signal });
    await session.next();
    requests.push(getOrLease(1), getOrLease(2));
    const answer = session.next();
    await settle();
    expect(requests.read).toBe(2);
    closing.abort();
    expect(describeAnswer((await answer).value)).toBe("0: draining");
    requests.push(getOrLease(3)); // the client sent one more before it heard: it is not run, and it says so
    const refused = await session.next();
    expect(refused.value?.result).toMatchObject({ case: "error", value: { code: Status.UNAVAILABLE, notRun: true } });
    expect(fake.started.has("k3")).toBe(false);
    fake.get("k2").resolve();
    expect(await nextAnswer(session)).toBe("2: getOrLease");
    fake.get("k1").resolve();
    expect(await nextAnswer(session)).toBe("1: getOrLease");
    const end = session.next();
    await settle();
    requests.end(); // the client ends its side on hearing draining
    expect((await end).done).toBe(true);
    expect(fake.started.has("k3")).toBe(false);
  });

  it("on closing ends a stream whose client neither sends nor ends anything, DRAIN_LINGER_MS after its calls are answered", async () => {
    const closing = new AbortController();
    const { requests, fake, session } = open({ closing: closing.signal });
    await session.next();
    requests.push(getOrLease(1));
    const answer = session.next();
    await settle();
    fake.get("k1").resolve();
    expect(describeAnswer((await answer).value)).toBe("1: getOrLease");
    closing.abort(); // the client sends nothing more and keeps its side open
    expect(await nextAnswer(session)).toBe("0: draining");
    let ended = false;
    const end = session.next().then((next) => (ended = next.done === true));
    await vi.advanceTimersByTimeAsync(DRAIN_LINGER_MS - 1);
    expect(ended).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await end;
    expect(ended).toBe(true);
    requests.push(getOrLease(2));
    await settle();
    expect(fake.started.has("k2")).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("cancels the context of every running call when the stream is cancelled", async () => {
    const { requests, cancel, fake, session } = open();
    await session.next();
    requests.push(getOrLease(1), getOrLease(2));
    const answer = session.next();
    await settle();
    const reason = new RpcError(Status.CANCELLED, "client went away");
    cancel.abort(reason);
    expect(fake.get("k1").context.signal.reason).toBe(reason);
    expect(fake.get("k2").context.signal.reason).toBe(reason);
    expect(describeAnswer((await answer).value)).toBe("1: CANCELLED client went away");
    fake.get("k1").resolve();
    fake.get("k2").resolve();
    await session.return();
  });

  it("cancels running calls, and reads and runs no further call, when the consumer stops early", async () => {
    const { requests, fake, session } = open();
    await session.next();
    requests.push(getOrLease(1), getOrLease(2));
    const answer = session.next();
    await settle();
    fake.get("k1").resolve();
    expect(describeAnswer((await answer).value)).toBe("1: getOrLease");
    await session.return();
    expect(RpcError.is(fake.get("k2").context.signal.reason, Status.CANCELLED)).toBe(true);
    requests.push(getOrLease(3));
    await settle();
    expect(fake.started.has("k3")).toBe(false);
    expect(requests.returned).toBe(true);
    fake.get("k2").resolve();
  });

  it("fails the stream when reading a message fails, cancelling the calls still running", async () => {
    const failing = new RpcError(Status.INVALID_ARGUMENT, "malformed message");
    const fake = fakeCalls();
    let handed = false;
    const requests: AsyncIterable<LeaseSessionRequest> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          if (!handed) {
            handed = true;
            return { done: false, value: getOrLease(1) };
          }
          await settle();
          throw failing;
        },
      }),
    };
    const session = leaseSession(requests, callContextOf(new AbortController().signal), fake.calls, { maxInFlight: 4, maxCallMs: 60_000, mapError });
    await expect(async () => {
      for await (const _ of session) void _;
    }).rejects.toBe(failing);
    expect(RpcError.is(fake.get("k1").context.signal.reason, Status.CANCELLED)).toBe(true);
    fake.get("k1").resolve();
  });
});
