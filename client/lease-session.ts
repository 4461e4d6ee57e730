import type { MessageInitShape } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import type { CallOptions } from "../core/grpc-adapter.js";
import { flatMessageBytesAtMost, MAX_RECEIVE_HEADER } from "../core/message-limits.js";
import { RpcError, Status } from "../core/rpc-error.js";
import type {
  GetOrLeaseRequestSchema,
  GetOrLeaseResponse,
  LeaseSessionRequestSchema,
  LeaseSessionResponse,
  ReleaseLeaseRequestSchema,
  ReleaseLeaseResponse,
  SetRequestSchema,
  SetResponse,
} from "../gen/tiercache/v1/cache_pb.js";
import type { ProcessHold } from "./process-hold.js";
import { PushQueue } from "./push-queue.js";

type RequestInit = MessageInitShape<typeof LeaseSessionRequestSchema>;

/** The calls a session carries, with their request and response types. */
interface SessionCalls {
  getOrLease: [MessageInitShape<typeof GetOrLeaseRequestSchema>, GetOrLeaseResponse];
  set: [MessageInitShape<typeof SetRequestSchema>, SetResponse];
  releaseLease: [MessageInitShape<typeof ReleaseLeaseRequestSchema>, ReleaseLeaseResponse];
}
type CallName = keyof SessionCalls;

/** What a session needs from the client: the stream, the unary calls to fall back on, and call options. */
export interface LeaseSessionTransport {
  open(requests: AsyncIterable<RequestInit>, options: CallOptions): AsyncIterable<LeaseSessionResponse>;
  unary: { [K in CallName]: (request: SessionCalls[K][0], options: CallOptions) => Promise<SessionCalls[K][1]> };
  /** Options (metadata) of a call; the session adds deadlines itself. */
  callOptions(): CallOptions;
  /** When true, calls go unary for now (e.g. while tracing is on, so that each call has its own spans). */
  preferUnary?(): boolean;
  /**
   * The largest message the client reads, told to the server (header {@link MAX_RECEIVE_HEADER}) so that an answer
   * too large to read fails its own call, as it would unary, not the stream and every call on it.
   */
  maxReceiveMessageBytes?: number;
}

/** Options of {@link LeaseSession}. */
export interface LeaseSessionOptions {
  /** Close the stream after this long without a call in flight, in ms. @default 250 */
  idleMs?: number;
  /** Holds the process while calls are in flight, when the client's connections do not. */
  hold?: ProcessHold;
  /**
   * A stream takes new calls for this long, in ms; later calls open a new one (the old one ends once its calls are
   * answered), so that a server's connection-age limit (GOAWAY, then a grace) finds no calls still being sent on it.
   * @default 10000
   */
  maxStreamAgeMs?: number;
}

interface Pending {
  id: bigint;
  name: CallName;
  request: unknown;
  deadline: number;
  resolve(response: unknown): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
  /** The request's bytes and strings, at most (its message is this plus framing). */
  contentBytes: number;
  /** Sent, and its caller got DEADLINE_EXCEEDED: it keeps its place on the stream until the server answers it. */
  expired: boolean;
}

/**
 * A call whose message may be this large or larger goes as a unary call: a
 * message over the server's limit would fail the whole stream and every call
 * on it (and a large one holds up the calls behind it), where a unary call
 * fails alone.
 */
const STREAMED_MESSAGE_BYTES = 64 * 1024;

/** Room kept for a message's framing (field tags, lengths, numbers, ids) on top of its bytes and strings. */
const FRAMING_BYTES = 1024;

/** The largest message sent before READY tells the server's limit: no server's is smaller (its minimum is 1 KiB). */
const PRE_READY_MESSAGE_BYTES = 1024;

/** Framing of a GetOrLease or ReleaseLease message (a few numbers and tags), the calls sent before READY. */
const SMALL_CALL_FRAMING_BYTES = 64;

/** At most the bytes of a request's bytes fields and strings, without framing. */
function contentBytes(request: unknown): number {
  return flatMessageBytesAtMost(request as object, 0);
}

/** How long a stream with nothing in flight and its request side ended may take to end before it is cancelled, in ms. */
const IDLE_END_WAIT_MS = 1000;

/** Statuses with which a stream fails before running any call it carries. */
const NOTHING_RAN = new Set<number>([Status.UNIMPLEMENTED, Status.UNAUTHENTICATED, Status.PERMISSION_DENIED]);

/** One open LeaseSession stream and the calls on it. */
class OpenStream {
  readonly requests = new PushQueue<RequestInit>();
  readonly pending = new Map<bigint, Pending>();
  readonly waiting: Pending[] = [];
  maxInFlight = 1;
  /** The largest message the server reads (from READY; unknown before). */
  maxMessageBytes = Infinity;
  ready = false;
  /** The request side was ended (idle, or close()): nothing more is sent on it. */
  closing = false;
  ended = false;
  idleTimer: NodeJS.Timeout | undefined;
  /** Cancels the stream if the server does not end it once it is closing and idle. */
  endTimer: NodeJS.Timeout | undefined;
  readonly openedAt = performance.now();
  /** How long the server lets the stream take new calls (from READY; its connections' grace allows calls this long to end). */
  maxAgeMs = Infinity;
  /** Cancels the stream (the server cancels what it still runs of it). */
  readonly cancel = new AbortController();
}

/**
 * GetOrLease, Set and ReleaseLease as messages of one long-lived
 * LeaseSession stream: each call costs one message each way instead of a
 * call. Calls keep their own deadlines (a call not yet sent when its
 * deadline passes is never sent); no more are sent than the server reads at
 * once, counting a call whose caller gave up until the server answers it,
 * so that the server reads every call as it comes and no call runs long
 * after its caller was told DEADLINE_EXCEEDED. A call the server did not run
 * (its session calls all taken) goes unary. When the stream fails, the calls
 * without an answer reject with UNAVAILABLE (they may or may not have taken
 * effect) and the next call opens a new stream. Against a server without
 * LeaseSession (UNIMPLEMENTED), every call goes unary from then on, those in
 * flight included.
 */
export class LeaseSession {
  readonly #transport: LeaseSessionTransport;
  readonly #idleMs: number;
  readonly #hold: ProcessHold | undefined;
  readonly #maxStreamAgeMs: number;
  #stream: OpenStream | undefined;
  #nextId = 1n;
  #unsupported = false;
  #closed = false;

  constructor(transport: LeaseSessionTransport, options: LeaseSessionOptions = {}) {
    this.#transport = transport;
    this.#idleMs = options.idleMs ?? 250;
    this.#hold = options.hold;
    this.#maxStreamAgeMs = options.maxStreamAgeMs ?? 10_000;
  }

  /** Whether calls go unary because the server has no LeaseSession. */
  get unsupported(): boolean {
    return this.#unsupported;
  }

  /** Runs `name` with `request` within `timeoutMs`: over the stream, or unary when the server has none. */
  call<K extends CallName>(name: K, request: SessionCalls[K][0], timeoutMs: number): Promise<SessionCalls[K][1]> {
    if (this.#unsupported || this.#closed || this.#transport.preferUnary?.() === true) return this.#unary(name, request, timeoutMs);
    const stream = this.#open();
    // A call the stream has no room for goes unary rather than wait behind others (a GetOrLease may wait for a lease);
    // so does a Set that could make a message over the server's limit, which would fail the stream and every call on it.
    const content = contentBytes(request);
    if (this.#goesUnary(stream, content) || (stream.ready && stream.pending.size >= stream.maxInFlight)) return this.#unary(name, request, timeoutMs);
    this.#hold?.begin();
    return new Promise<unknown>((resolve, reject) => {
      const id = this.#nextId++;
      const pending: Pending = {
        id,
        name,
        request,
        deadline: Date.now() + timeoutMs,
        resolve,
        reject,
        contentBytes: content,
        expired: false,
        timer: setTimeout(() => this.#expire(stream, pending), timeoutMs),
      };
      clearTimeout(stream.idleTimer);
      stream.waiting.push(pending);
      this.#sendWaiting(stream);
    }).finally(() => this.#hold?.end()) as Promise<SessionCalls[K][1]>;
  }

  /** Whether a call goes unary because its message could be over the server's limit (or is large) and fail the whole stream. */
  #goesUnary(stream: OpenStream, contentBytes: number): boolean {
    const bytes = contentBytes + FRAMING_BYTES;
    return bytes >= STREAMED_MESSAGE_BYTES || bytes >= stream.maxMessageBytes;
  }

  /** Takes no further call on the current stream (it ends once its calls are answered): the next call opens a new one. */
  rotate(): void {
    const stream = this.#stream;
    if (stream === undefined || stream.closing || stream.ended) return;
    this.#endRequests(stream);
    for (const pending of stream.waiting.splice(0)) this.#retry(pending);
  }

  /** Ends the stream; calls in flight get their answers, later calls go unary. */
  close(): void {
    this.#closed = true;
    const stream = this.#stream;
    if (stream === undefined) return;
    this.#endRequests(stream);
    const waiting = stream.waiting.splice(0);
    for (const pending of waiting) this.#retry(pending);
  }

  /** Sends nothing more on `stream`: the next call opens another. */
  #endRequests(stream: OpenStream): void {
    stream.closing = true;
    clearTimeout(stream.idleTimer);
    stream.requests.end();
    this.#cancelOnceIdle(stream);
  }

  /**
   * A stream whose request side is ended and that carries no call is cancelled unless the server ends it soon: a server
   * that stopped answering must not keep it, and the process, open until the connection is found dead.
   */
  #cancelOnceIdle(stream: OpenStream): void {
    if (!stream.closing || stream.ended || stream.pending.size > 0 || stream.endTimer !== undefined) return;
    stream.endTimer = setTimeout(() => {
      if (!stream.ended && stream.pending.size === 0) stream.cancel.abort();
    }, IDLE_END_WAIT_MS);
    stream.endTimer.unref();
  }

  #unary<K extends CallName>(name: K, request: SessionCalls[K][0], timeoutMs: number): Promise<SessionCalls[K][1]> {
    const unary = this.#transport.unary[name] as (request: SessionCalls[K][0], options: CallOptions) => Promise<SessionCalls[K][1]>;
    return unary(request, { ...this.#transport.callOptions(), timeoutMs });
  }

  #open(): OpenStream {
    const aged = this.#stream;
    if (aged !== undefined && !aged.ended && !aged.closing && performance.now() - aged.openedAt >= Math.min(this.#maxStreamAgeMs, aged.maxAgeMs)) this.rotate();
    const current = this.#stream;
    if (current !== undefined && !current.ended && !current.closing) return current;
    const stream = new OpenStream();
    this.#stream = stream;
    void this.#read(stream);
    return stream;
  }

  async #read(stream: OpenStream): Promise<void> {
    let failure: unknown;
    try {
      await undefined; // the call that opens the stream joins it first: a transport that throws then fails that call too
      for await (const response of this.#transport.open(stream.requests, this.#streamOptions(stream))) {
        this.#answer(stream, response);
      }
    } catch (err) {
      failure = err;
    }
    this.#end(stream, failure);
  }

  #streamOptions(stream: OpenStream): CallOptions {
    const options = this.#transport.callOptions();
    const limit = this.#transport.maxReceiveMessageBytes;
    const metadata = options.metadata?.clone() ?? new Metadata();
    if (limit !== undefined && Number.isFinite(limit)) metadata.set(MAX_RECEIVE_HEADER, String(limit));
    return { ...options, metadata, deadline: Infinity, signal: stream.cancel.signal };
  }

  #answer(stream: OpenStream, response: LeaseSessionResponse): void {
    const { result } = response;
    if (result.case === "ready") {
      stream.ready = true;
      stream.maxInFlight = Math.max(1, result.value.maxInFlight);
      if (result.value.maxMessageBytes > 0) stream.maxMessageBytes = result.value.maxMessageBytes;
      if (result.value.maxStreamAgeMs > 0) stream.maxAgeMs = result.value.maxStreamAgeMs;
      this.#sendWaiting(stream);
      return;
    }
    if (result.case === "draining") {
      // The server takes no further call here: end our side (the stream ends once its calls are answered); later calls
      // open a new stream, which goes to a server that is not shutting down.
      if (this.#stream === stream) this.rotate();
      return;
    }
    const pending = stream.pending.get(response.id);
    if (pending === undefined) return;
    stream.pending.delete(response.id);
    clearTimeout(pending.timer);
    if (pending.expired) {
      // its caller was answered DEADLINE_EXCEEDED already
    } else if (result.case === "error" && result.value.notRun) this.#runUnary(pending);
    else if (result.case === "error") pending.reject(new RpcError(result.value.code, result.value.message));
    else if (result.case === pending.name) pending.resolve(result.value);
    else pending.reject(new RpcError(Status.INTERNAL, `LeaseSession answered a ${pending.name} call with ${String(result.case)}`));
    this.#sendWaiting(stream);
    this.#cancelOnceIdle(stream);
  }

  /**
   * Sends waiting calls while the server has room for them; closes an idle stream after a while. Before READY only one
   * call is sent, and no Set: the server's message limit is not known yet, and a message over it fails the stream.
   */
  #sendWaiting(stream: OpenStream): void {
    if (stream.ended || stream.closing) return;
    const ready = stream.ready ? stream.maxInFlight : 1;
    while (stream.waiting.length > 0 && stream.pending.size < ready) {
      const next = stream.waiting[0]!;
      if (!stream.ready && (next.name === "set" || next.contentBytes + SMALL_CALL_FRAMING_BYTES > PRE_READY_MESSAGE_BYTES)) break;
      const pending = stream.waiting.shift()!;
      const left = pending.deadline - Date.now();
      if (left <= 0) {
        clearTimeout(pending.timer);
        pending.reject(new RpcError(Status.DEADLINE_EXCEEDED, `${pending.name} did not finish within its deadline`));
        continue;
      }
      if (this.#goesUnary(stream, pending.contentBytes)) {
        this.#runUnary(pending);
        continue;
      }
      stream.pending.set(pending.id, pending);
      stream.requests.push({ id: pending.id, timeoutMs: Math.ceil(left), call: { case: pending.name, value: pending.request } as NonNullable<RequestInit["call"]> });
    }
    // Calls queued before READY that the stream has no room for go unary, as a call made when it is full does.
    if (stream.ready) for (const pending of stream.waiting.splice(0)) this.#runUnary(pending);
    if (stream.pending.size === 0 && stream.waiting.length === 0) {
      clearTimeout(stream.idleTimer);
      stream.idleTimer = setTimeout(() => {
        if (stream.pending.size === 0 && stream.waiting.length === 0) this.#endRequests(stream);
      }, this.#idleMs);
      stream.idleTimer.unref();
    }
  }

  /** A call's deadline passed: a waiting one is dropped; a sent one keeps its place until the server answers it (at its own deadline). */
  #expire(stream: OpenStream, pending: Pending): void {
    const at = stream.waiting.indexOf(pending);
    if (at >= 0) stream.waiting.splice(at, 1);
    else if (stream.pending.get(pending.id) === pending) pending.expired = true;
    else return;
    pending.reject(new RpcError(Status.DEADLINE_EXCEEDED, `${pending.name} did not finish within its deadline`));
    if (stream.waiting.length === 0 && [...stream.pending.values()].every((p) => p.expired)) {
      // Nobody waits for anything this stream still carries: cancel it (the server stops those calls, none runs later),
      // rather than keep it, and the process, open until a server that stopped answering is found dead.
      stream.closing = true;
      stream.cancel.abort();
      return;
    }
    this.#sendWaiting(stream);
  }

  /** The stream ended: calls never sent, or never run (UNIMPLEMENTED and the like), go again; the others are uncertain. */
  #end(stream: OpenStream, failure: unknown): void {
    stream.ended = true;
    clearTimeout(stream.idleTimer);
    clearTimeout(stream.endTimer);
    if (this.#stream === stream) this.#stream = undefined;
    const code = failure instanceof RpcError ? failure.code : undefined;
    if (code === Status.UNIMPLEMENTED) this.#unsupported = true;
    const nothingRan = code !== undefined && NOTHING_RAN.has(code);
    // A refused caller (UNAUTHENTICATED, PERMISSION_DENIED) would be refused again on the next stream: no call is retried.
    const refused = nothingRan && code !== Status.UNIMPLEMENTED;
    // A stream that failed before READY found no server to take calls (as a unary call would have): the calls it never
    // sent fail now, UNAVAILABLE, rather than each opening yet another stream in turn.
    const unreachable = !stream.ready && !nothingRan;
    // The server ends a stream OK only once it has answered every call it read: a call without an answer was never read.
    const neverRead = failure === undefined && stream.ready;
    const cause = failure === undefined ? "the server ended it" : failure instanceof Error ? failure.message : String(failure);
    const retry: Pending[] = [];
    const unread: Pending[] = [];
    for (const pending of stream.waiting) {
      if (refused || unreachable) {
        clearTimeout(pending.timer);
        pending.reject(refused ? failure : new RpcError(Status.UNAVAILABLE, `${pending.name} was not sent: the LeaseSession stream failed before the server took any call: ${cause}`, { cause: failure }));
      } else retry.push(pending);
    }
    for (const pending of stream.pending.values()) {
      if (pending.expired) clearTimeout(pending.timer);
      else if (refused) {
        clearTimeout(pending.timer);
        pending.reject(failure);
      } else if (nothingRan) retry.push(pending);
      else if (neverRead) unread.push(pending);
      else {
        clearTimeout(pending.timer);
        pending.reject(new RpcError(Status.UNAVAILABLE, `the LeaseSession stream ended before ${pending.name} was answered, which may or may not have taken effect: ${cause}`, { cause: failure }));
      }
    }
    stream.pending.clear();
    stream.waiting.length = 0;
    for (const pending of retry) this.#retry(pending);
    // Unary, as a call the server refused while draining: the next stream might go to the same server.
    for (const pending of unread) this.#runUnary(pending);
  }

  /** Runs a call the server did not run as its unary RPC, within what is left of its deadline. */
  #runUnary(pending: Pending): void {
    this.#again(pending, (left) => this.#unary(pending.name, pending.request as never, left));
  }

  /** Runs a call that no stream ran again, on a new stream or unary, within what is left of its deadline. */
  #retry(pending: Pending): void {
    this.#again(pending, (left) => this.call(pending.name, pending.request as never, left));
  }

  /** Settles `pending` by `run` given the ms left of its deadline, or DEADLINE_EXCEEDED when none is left. */
  #again(pending: Pending, run: (leftMs: number) => Promise<unknown>): void {
    clearTimeout(pending.timer);
    const left = pending.deadline - Date.now();
    if (left <= 0) pending.reject(new RpcError(Status.DEADLINE_EXCEEDED, `${pending.name} did not finish within its deadline`));
    else run(left).then(pending.resolve, pending.reject);
  }
}
