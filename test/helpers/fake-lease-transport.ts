import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { type LeaseSessionTransport } from "../../client/lease-session.js";
import type { CallOptions } from "../../core/grpc-adapter.js";
import { RpcError, Status, statusName } from "../../core/rpc-error.js";
import { LeaseSessionResponseSchema, type LeaseSessionRequestSchema, type LeaseSessionResponse } from "../../gen/tiercache/v1/cache_pb.js";

type RequestInit = MessageInitShape<typeof LeaseSessionRequestSchema>;

/** One stream the session opened: what it sent, and the answers the test gives. */
export class FakeStream {
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
    options.signal?.addEventListener("abort", () => this.fail(new RpcError(Status.CANCELLED, "Cancelled on client")), { once: true });
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

export function fakeTransport() {
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
export function track(call: Promise<unknown>): { readonly outcome: string } {
  const tracked = { outcome: "pending" };
  call.then(
    (value) => (tracked.outcome = String((value as { leaseToken?: string }).leaseToken)),
    (err: unknown) => (tracked.outcome = err instanceof RpcError ? `${statusName(err.code)}: ${err.details}` : `thrown ${String(err)}`),
  );
  return tracked;
}

