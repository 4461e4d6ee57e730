import { create, toBinary, type DescMethod, type MessageInitShape } from "@bufbuild/protobuf";
import type { Authorizer, CallContext, UnaryHandler } from "../../core/grpc-adapter.js";
import { flatMessageBytesAtMost, MAX_RECEIVE_HEADER } from "../../core/message-limits.js";
import { RpcError, Status } from "../../core/rpc-error.js";
import {
  CacheService,
  type GetOrLeaseRequestSchema,
  type GetOrLeaseResponseSchema,
  type LeaseSessionRequest,
  LeaseSessionResponseSchema,
  ReleaseLeaseRequestSchema,
  type ReleaseLeaseResponseSchema,
  type SetRequestSchema,
  type SetResponseSchema,
} from "../../gen/tiercache/v1/cache_pb.js";
import type { CallSlots } from "./call-slots.js";
import { MessageCallContext } from "./message-call-context.js";

/** The unary handlers a LeaseSession runs its calls with. */
export interface LeaseSessionCalls {
  getOrLease: UnaryHandler<typeof GetOrLeaseRequestSchema, typeof GetOrLeaseResponseSchema>;
  set: UnaryHandler<typeof SetRequestSchema, typeof SetResponseSchema>;
  releaseLease: UnaryHandler<typeof ReleaseLeaseRequestSchema, typeof ReleaseLeaseResponseSchema>;
}

/** Options of {@link leaseSession}. */
export interface LeaseSessionOptions {
  /** Calls of one stream read and not yet answered (their answers written) at once; the stream is not read further until one is. */
  maxInFlight: number;
  /** The largest request message the server reads (told to the client in READY); unset when unlimited. */
  maxMessageBytes?: number;
  /** The longest deadline of one call, in ms (the server's max-deadline); also a call's deadline when it names none. */
  maxCallMs: number;
  /** How long the client should send new calls on one stream (told in READY), in ms; unset for no limit. */
  maxStreamAgeMs?: number;
  /** Access control of each call, as for the unary RPC it holds. */
  authorize?: Authorizer;
  /** Maps what a handler throws to the status of its answer. */
  mapError: (error: unknown) => { code: number; details: string };
  /**
   * Aborted when the server drains: the stream says so (`draining`), answers any call read after it UNAVAILABLE
   * (not run), and ends once the calls it runs are answered and the client has ended its side, or {@link DRAIN_LINGER_MS} after.
   */
  closing?: AbortSignal;
  /** The server-wide bound on calls across every LeaseSession stream: a call read when none is free is answered at once, not run. */
  slots?: CallSlots;
  /** Learns how each call ended (status code, 0 for OK) and how long it took, e.g. for per-method metrics. */
  onCallEnd?: (method: DescMethod, code: number, seconds: number) => void;
}

type Response = MessageInitShape<typeof LeaseSessionResponseSchema>;

const STOPPED = Symbol("stopped");

/** Room for a GetOrLease answer's framing (field tags, lengths, numbers, the id) on top of its value and strings. */
const ANSWER_FRAMING_BYTES = 128;

/** The largest message the client reads, from the stream's {@link MAX_RECEIVE_HEADER}; undefined when it does not say. */
function clientReceiveLimit(stream: CallContext): number | undefined {
  const said = stream.metadata.get(MAX_RECEIVE_HEADER)[0];
  const limit = typeof said === "string" && /^\d{1,15}$/.test(said) ? Number(said) : undefined;
  return limit !== undefined && limit > 0 ? limit : undefined;
}

/** How long a draining stream waits for the client to end its side once nothing is left to answer, in ms. */
export const DRAIN_LINGER_MS = 500;

const METHODS = {
  getOrLease: CacheService.method.getOrLease,
  set: CacheService.method.set,
  releaseLease: CacheService.method.releaseLease,
} satisfies Record<keyof LeaseSessionCalls, DescMethod>;

function failure(id: bigint, code: number, message: string, notRun = false): Response {
  return { id, result: { case: "error", value: { code, message, notRun } } };
}

/**
 * The LeaseSession handler: runs each request message as the unary call it
 * holds, concurrently (at most `maxInFlight` read and unanswered), and
 * answers each as soon as it is done. A failed call is answered with its
 * status and the stream goes on; a call read when the server-wide slots are
 * all taken is answered RESOURCE_EXHAUSTED, `not_run`, without waiting (a
 * wait would hold up the calls behind it on the stream, unread while their
 * deadlines run). The stream fails only when a message cannot be read
 * (malformed, or the caller is not authenticated), and ends when the client
 * closes its side and every call is answered.
 */
export async function* leaseSession(
  requests: AsyncIterable<LeaseSessionRequest>,
  stream: CallContext,
  calls: LeaseSessionCalls,
  options: LeaseSessionOptions,
): AsyncIterable<Response> {
  /** Answers not yet written; `written` runs once the stream has taken one (it gives back the call's place and slot), `dropped` when it never will. */
  const answers: { response: Response; written: () => void; dropped?: (() => void) | undefined }[] = [];
  const ids = new Set<bigint>();
  const contexts = new Set<MessageCallContext>();
  /** Calls read whose answer is not written yet (a call answered at its deadline gives its place back though its handler runs on). */
  let places = 0;
  /** Handlers that have not stopped yet. */
  let running = 0;
  let readerDone = false;
  let readerError: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  let roomFor: (() => void) | undefined;
  const full = () => places >= options.maxInFlight;

  let over = false;
  /** Queues the answer of a call read; `then` runs once it is written (or the stream is over), `dropped` when it is never written. */
  const answer = (response: Response, then?: () => void, dropped?: () => void) => {
    const written = () => {
      places--;
      then?.();
      if (roomFor && !full()) roomFor();
    };
    if (over) {
      // The stream is over: nobody writes it.
      dropped?.();
      return written();
    }
    answers.push({ response, written, dropped });
    notify();
  };

  const receiveLimit = clientReceiveLimit(stream);
  let draining = false;
  let lingerOver = false;
  let linger: NodeJS.Timeout | undefined;

  /** Runs a call just read; its deadline counts from now. */
  const run = (request: LeaseSessionRequest) => {
    places++;
    const { id } = request;
    const { call } = request;
    if (draining) {
      if (call.case !== undefined) options.onCallEnd?.(METHODS[call.case], Status.UNAVAILABLE, 0);
      return answer(failure(id, Status.UNAVAILABLE, "not run: the server is shutting down; send it again on a new stream or unary", true));
    }
    if (call.case === undefined) return answer(failure(id, Status.INVALID_ARGUMENT, "LeaseSessionRequest holds no call: set get_or_lease, set or release_lease"));
    if (ids.has(id)) return answer(failure(id, Status.INVALID_ARGUMENT, `id ${id} is already in flight on this stream`));
    const method = METHODS[call.case];
    if (options.slots && !options.slots.tryTake()) {
      options.onCallEnd?.(method, Status.RESOURCE_EXHAUSTED, 0);
      const message = `not run: the server's ${options.slots.max} LeaseSession calls are all taken; send it as the unary ${method.name} call`;
      return answer(failure(id, Status.RESOURCE_EXHAUSTED, message, true));
    }
    const allowedMs = request.timeoutMs === 0 ? options.maxCallMs : Math.min(request.timeoutMs, options.maxCallMs);
    const started = performance.now();
    const context = new MessageCallContext(stream, allowedMs);
    contexts.add(context);
    ids.add(id);
    running++;
    // The server-wide slot is held until the handler has stopped and its answer is written: unread answers count too.
    let parts = 2;
    const part = () => {
      if (--parts === 0) options.slots?.give();
    };
    let answered = false;
    const settle = (response: Response | undefined) => {
      if (response?.result?.case === "getOrLease" && receiveLimit !== undefined && flatMessageBytesAtMost(response.result.value, ANSWER_FRAMING_BYTES) > receiveLimit) {
        // Near the limit: the exact size decides, as it would for a unary answer.
        const bytes = toBinary(LeaseSessionResponseSchema, create(LeaseSessionResponseSchema, response)).byteLength;
        if (bytes > receiveLimit) {
          giveBackLease(calls, call, response, stream);
          response = failure(id, Status.RESOURCE_EXHAUSTED, `the answer (${bytes} bytes) is over the client's max receive message size (${receiveLimit} bytes): raise it (the stream adds a few bytes to the unary answer)`);
        }
      }
      if (!answered && response) {
        answered = true;
        ids.delete(id);
        options.onCallEnd?.(method, response.result?.case === "error" ? response.result.value.code ?? Status.UNKNOWN : Status.OK, (performance.now() - started) / 1000);
        answer(response, part, () => giveBackLease(calls, call, response!, stream));
      }
    };
    const fail = (err: unknown) => {
      const { code, details } = err instanceof RpcError ? { code: err.code, details: err.details } : options.mapError(err);
      settle(failure(id, code, details));
    };
    // The deadline answers at once, whatever the handler is doing; the handler keeps its slot until it stops.
    const stopListening = context.onCancel(fail);
    const done = () => {
      stopListening();
      context.close();
      contexts.delete(context);
      part();
      running--;
      notify();
    };
    let work: Promise<Response | undefined>;
    try {
      options.authorize?.(method, call.value, context);
      work = Promise.resolve(invoke(calls, call, context, id));
    } catch (err) {
      work = Promise.reject(err);
    }
    work.then(settle, fail).finally(done);
  };

  // Reading stops when the server drains or the stream ends: a read waiting for the client's next message is given up.
  let iterator: AsyncIterator<LeaseSessionRequest> | undefined;
  let reading = true;
  let stopWaiting!: () => void;
  const stopped = new Promise<typeof STOPPED>((resolve) => (stopWaiting = () => resolve(STOPPED)));
  const stopReading = () => {
    reading = false;
    stopWaiting();
    roomFor?.();
  };

  const read = async () => {
    try {
      iterator = requests[Symbol.asyncIterator]();
      for (;;) {
        if (full()) await new Promise<void>((resolve) => (roomFor = resolve)).finally(() => (roomFor = undefined));
        if (!reading) break;
        const next = await Promise.race([iterator.next(), stopped]);
        if (next === STOPPED || next.done) break;
        run(next.value);
      }
    } catch (err) {
      readerError = { error: err };
    } finally {
      readerDone = true;
      notify();
    }
  };

  const limit = options.maxMessageBytes;
  const age = options.maxStreamAgeMs;
  yield {
    result: {
      case: "ready",
      value: {
        maxInFlight: options.maxInFlight,
        ...(limit !== undefined && Number.isFinite(limit) && { maxMessageBytes: Math.min(limit, 0xffff_ffff) }),
        ...(age !== undefined && Number.isFinite(age) && { maxStreamAgeMs: Math.min(Math.max(1, Math.floor(age)), 0xffff_ffff) }),
      },
    },
  };
  const onClosing = () => {
    if (draining) return;
    draining = true;
    answers.push({ response: { result: { case: "draining", value: {} } }, written: () => {} });
    notify();
  };
  /** Once a draining stream has nothing left to answer, the client has DRAIN_LINGER_MS to end its side. */
  const lingerOnceIdle = () => {
    if (!draining || linger !== undefined || places > 0 || running > 0 || answers.length > 0) return;
    linger = setTimeout(() => {
      lingerOver = true;
      notify();
    }, DRAIN_LINGER_MS);
    linger.unref?.();
  };
  if (options.closing?.aborted) onClosing();
  options.closing?.addEventListener("abort", onClosing);
  void read();
  try {
    for (;;) {
      const next = answers.shift();
      if (next !== undefined) {
        // Resumed to go on, the writer has taken the answer; ended at the yield instead (the call was over), it never will.
        let taken = false;
        try {
          yield next.response;
          taken = true;
        } finally {
          if (!taken) next.dropped?.();
          next.written();
        }
        continue;
      }
      if (readerError) throw readerError.error;
      if ((readerDone || lingerOver) && places === 0 && running === 0) return;
      lingerOnceIdle();
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    options.closing?.removeEventListener("abort", onClosing);
    clearTimeout(linger);
    stopReading();
    try {
      void Promise.resolve(iterator?.return?.()).catch(() => {});
    } catch {
      // The request stream is over either way.
    }
    over = true;
    for (const left of answers.splice(0)) {
      left.dropped?.();
      left.written();
    }
    // Nobody will read the answers of calls still running: stop them.
    const ended = new RpcError(Status.CANCELLED, "the LeaseSession stream ended");
    for (const context of contexts) context.cancel(ended);
  }
}

/** A GetOrLease answer that will never be written holds a lease token nobody received: gives that lease back. */
function giveBackLease(calls: LeaseSessionCalls, call: Exclude<LeaseSessionRequest["call"], { case: undefined }>, response: Response, stream: CallContext): void {
  if (call.case !== "getOrLease" || response.result?.case !== "getOrLease") return;
  const leaseToken = response.result.value.leaseToken;
  if (!leaseToken) return;
  const { namespace, key } = call.value;
  const request = create(ReleaseLeaseRequestSchema, { namespace, key, leaseToken });
  void Promise.resolve()
    .then(() => calls.releaseLease(request, stream))
    .catch(() => {}); // a lease not given back ends at its lease time
}

function invoke(calls: LeaseSessionCalls, call: Exclude<LeaseSessionRequest["call"], { case: undefined }>, context: CallContext, id: bigint): Promise<Response> | Response {
  switch (call.case) {
    case "getOrLease":
      return then(calls.getOrLease(call.value, context), (value) => ({ id, result: { case: "getOrLease", value } }));
    case "set":
      return then(calls.set(call.value, context), (value) => ({ id, result: { case: "set", value } }));
    case "releaseLease":
      return then(calls.releaseLease(call.value, context), (value) => ({ id, result: { case: "releaseLease", value } }));
  }
}

function then<T, R>(value: T | Promise<T>, map: (value: T) => R): R | Promise<R> {
  return value instanceof Promise ? value.then(map) : map(value);
}
