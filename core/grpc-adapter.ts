import type { Readable } from "node:stream";
import type { DescMessage, DescMethod, DescService, Message, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import {
  Client,
  Metadata,
  status,
  type CallOptions as GrpcCallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientDuplexStream,
  type ClientReadableStream,
  type MethodDefinition,
  type ServerDuplexStream,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type ServiceError,
  type StatusObject,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from "@grpc/grpc-js";
import { Cancellation } from "./cancellation.js";
import { channelUnaryCall, isServiceError } from "./channel-unary-call.js";
import { MAX_TIMER_MS } from "./clock.js";
import { linkSignal } from "./link-signal.js";
import { RpcError } from "./rpc-error.js";
import { exceedsFieldBudget } from "./wire/field-budget.js";
import type { EncodedMessage } from "./wire/encoded-message.js";
import { messageCodec } from "./wire/message-codec.js";

/** What a server handler knows about the call it serves. */
export interface CallContext {
  /** Aborted when the client cancels or its deadline passes: stop work then. */
  readonly signal: AbortSignal;
  /** Why the call ended early (what `signal.reason` would be), or undefined while it runs; reading it creates no signal. */
  readonly cancelReason: unknown;
  /**
   * Calls `listener` once when the call is cancelled or its deadline passes
   * (at once if that already happened); returns a function that stops
   * listening. What `signal` tells, without creating an AbortSignal, whose
   * first listener costs several microseconds per call.
   */
  onCancel(listener: (reason: unknown) => void): () => void;
  /** The client's deadline in ms since the epoch, or `Infinity` when it set none. */
  readonly deadline: number;
  /** The request metadata (headers). */
  readonly metadata: Metadata;
  /** The client's address. */
  readonly peer: string;
  /** For a call carried as one message of a stream (LeaseSession): the stream's own context, whose caller it shares. */
  readonly stream?: CallContext;
}

/** What a streaming handler yields: a message (or its init shape), or one already encoded by a writer that knows its type. */
export type ResponseOf<O extends DescMessage> = MessageInitShape<O> | EncodedMessage<O>;

/** Handler of a unary RPC: one request in, one response out. */
export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  context: CallContext,
) => MessageInitShape<O> | Promise<MessageInitShape<O>>;
/** Handler of a client-streaming RPC: many requests in, one response out. */
export type ClientStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  context: CallContext,
) => Promise<MessageInitShape<O>>;
/** Handler of a server-streaming RPC: one request in, many responses out. */
export type ServerStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  context: CallContext,
) => AsyncIterable<ResponseOf<O>>;
/** Handler of a bidi-streaming RPC: many requests in, many responses out. */
export type BidiStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  context: CallContext,
) => AsyncIterable<ResponseOf<O>>;

type HandlerFor<M> = M extends { methodKind: infer K; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? K extends "unary"
    ? UnaryHandler<I, O>
    : K extends "client_streaming"
      ? ClientStreamingHandler<I, O>
      : K extends "server_streaming"
        ? ServerStreamingHandler<I, O>
        : BidiStreamingHandler<I, O>
  : never;

/** One handler per RPC of `S`, typed from the descriptor: a missing or mistyped handler does not compile. */
export type ServiceImpl<S extends DescService> = { [K in keyof S["method"]]: HandlerFor<S["method"][K]> };

/** Per-call options of a client method. */
export interface CallOptions {
  /** Absolute deadline (Date or ms since the epoch). */
  deadline?: Date | number;
  /** Deadline relative to now, in ms; used when `deadline` is not given. */
  timeoutMs?: number;
  /** Cancels the call when aborted. */
  signal?: AbortSignal;
  /** Request metadata (headers). */
  metadata?: Metadata;
}

/** Client method of a unary RPC. */
export type UnaryMethod<I extends DescMessage, O extends DescMessage> = (
  request: MessageInitShape<I>,
  options?: CallOptions,
) => Promise<MessageShape<O>>;
/** Client method of a client-streaming RPC. */
export type ClientStreamingMethod<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageInitShape<I>> | Iterable<MessageInitShape<I>>,
  options?: CallOptions,
) => Promise<MessageShape<O>>;
/** Client method of a server-streaming RPC. */
export type ServerStreamingMethod<I extends DescMessage, O extends DescMessage> = (
  request: MessageInitShape<I>,
  options?: CallOptions,
) => AsyncIterable<MessageShape<O>>;
/** Client method of a bidi-streaming RPC. */
export type BidiStreamingMethod<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageInitShape<I>> | Iterable<MessageInitShape<I>>,
  options?: CallOptions,
) => AsyncIterable<MessageShape<O>>;

type ClientMethodFor<M> = M extends { methodKind: infer K; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? K extends "unary"
    ? UnaryMethod<I, O>
    : K extends "client_streaming"
      ? ClientStreamingMethod<I, O>
      : K extends "server_streaming"
        ? ServerStreamingMethod<I, O>
        : BidiStreamingMethod<I, O>
  : never;

/** A typed client of `S`: one async method per RPC, plus `close()`. */
export type ServiceClient<S extends DescService> = { [K in keyof S["method"]]: ClientMethodFor<S["method"][K]> } & {
  /**
   * Closes the channel: calls already started run to their end, calls still
   * waiting for the connection fail with UNAVAILABLE, and calls made after
   * it fail with CANCELLED.
   */
  close(): void;
  /** The underlying grpc-js client (channel state, waitForReady). */
  readonly grpcClient: Client;
};

/** Maps anything a handler throws to the status the client sees. */
export type ErrorMapper = (error: unknown) => StatusObject | ServiceError | { code: status; details: string };

/**
 * Checks a call before its handler sees anything (authentication, access
 * control). It is called once when the handler would start, with `request`
 * undefined (so that a stream which sends no message is checked too), then
 * with every decoded request message before the handler receives it. Throw
 * an {@link RpcError} to end the call with that status; the handler never
 * sees the message, and a stream ends there even if the handler swallows
 * the error.
 */
export type Authorizer = (method: DescMethod, request: Message | undefined, context: CallContext) => void;

/** Options of {@link addService}. */
export interface ServerAdapterOptions {
  /** Maps non-{@link RpcError} errors to a status; the default sends INTERNAL. */
  mapError?: ErrorMapper;
  /** Runs before the handler for every call and every request message; see {@link Authorizer}. */
  authorize?: Authorizer;
  /**
   * Ceiling on every call's deadline, in ms from when its handler starts, or
   * a function giving it per method (undefined = no ceiling, e.g. for a
   * stream meant to stay open). A call with no deadline or a later one gets
   * this one: its context's `deadline` and `signal` say so, and when it
   * passes the client gets DEADLINE_EXCEEDED whatever the handler is doing.
   * @default none
   */
  maxDeadlineMs?: number | ((method: DescMethod) => number | undefined);
  /**
   * Most fields one request message may hold, counting those of every
   * message nested in it (batch items, entries and their fields, tags); a
   * request over it is refused with RESOURCE_EXHAUSTED before it is decoded.
   * @default no limit
   */
  maxRequestFields?: number;
}

function path(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function passThrough(bytes: Buffer): Buffer {
  return bytes;
}

function decodeRequest<D extends DescMessage>(schema: D, bytes: Uint8Array, maxFields: number | undefined): MessageShape<D> {
  if (maxFields !== undefined && exceedsFieldBudget(schema, bytes, maxFields)) {
    throw new RpcError(status.RESOURCE_EXHAUSTED, `${schema.typeName} holds more than ${maxFields} fields (keys, entries, tags and their fields); a request may hold at most that many`);
  }
  try {
    return messageCodec(schema).decode(bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new RpcError(status.INVALID_ARGUMENT, `malformed ${schema.typeName}: ${reason}`, { cause: err });
  }
}

/**
 * The grpc-js service definition of `service` for a server. Requests are left
 * as raw bytes: {@link addService} decodes them inside the handler wrapper so
 * that malformed bytes give INVALID_ARGUMENT rather than grpc-js's INTERNAL.
 */
export function serverDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<Buffer, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: path(method),
      originalName: method.name,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: passThrough,
      requestDeserialize: passThrough,
      responseSerialize: messageCodec(method.output).encodeToSend as (value: unknown) => Buffer,
      responseDeserialize: messageCodec(method.output).decode,
    };
  }
  return definition;
}

type AnyServerCall = ServerUnaryCall<unknown, unknown> | ServerReadableStream<unknown, unknown> | ServerWritableStream<unknown, unknown>;

class ServerCallContext extends Cancellation implements CallContext {
  #call: AnyServerCall;
  readonly #deadline: number;
  #timer: NodeJS.Timeout | undefined;
  #onCancelled: (() => void) | undefined;
  #closed = false;

  /** `onExpire` ends the call when the `maxDeadlineMs` ceiling passes before the client's own deadline. */
  constructor(call: AnyServerCall, maxDeadlineMs: number | undefined, onExpire: (error: RpcError) => void) {
    super();
    this.#call = call;
    const own = call.getDeadline();
    this.#deadline = own instanceof Date ? own.getTime() : own;
    const ceiling = maxDeadlineMs === undefined ? Infinity : Date.now() + maxDeadlineMs;
    if (ceiling >= this.#deadline) return;
    this.#deadline = ceiling;
    this.#timer = setTimeout(() => {
      const expired = new RpcError(status.DEADLINE_EXCEEDED, `deadline exceeded: calls may take at most max-deadline (${maxDeadlineMs} ms)`);
      this.cancel(expired, () => onExpire(expired));
    }, maxDeadlineMs);
    (call as ServerUnaryCall<unknown, unknown>).once("cancelled", () => clearTimeout(this.#timer));
  }

  /** Stops the deadline ceiling's timer and stops listening for a cancel: the call has ended. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#onCancelled) (this.#call as ServerUnaryCall<unknown, unknown>).removeListener("cancelled", this.#onCancelled);
    this.#onCancelled = undefined;
    this.forgetListeners();
  }

  override get cancelReason(): unknown {
    if (super.cancelReason === undefined && this.#call.cancelled && !this.#closed) this.cancel(cancelledError());
    return super.cancelReason;
  }

  override onCancel(listener: (reason: unknown) => void): () => void {
    if (this.cancelReason === undefined) {
      if (this.#closed) return noop;
      this.#hear();
    }
    return super.onCancel(listener);
  }

  override get signal(): AbortSignal {
    if (this.cancelReason === undefined && !this.#closed) this.#hear();
    return super.signal;
  }

  /** Listens once for grpc-js's "cancelled" (it also comes when the stream closes after the call ended: close() stops listening first). */
  #hear(): void {
    if (this.#onCancelled) return;
    this.#onCancelled = () => this.cancel(cancelledError());
    (this.#call as ServerUnaryCall<unknown, unknown>).once("cancelled", this.#onCancelled);
  }

  get deadline(): number {
    return this.#deadline;
  }

  get metadata(): Metadata {
    return this.#call.metadata;
  }

  get peer(): string {
    return this.#call.getPeer();
  }
}

function noop(): void {}

function cancelledError(): RpcError {
  return new RpcError(status.CANCELLED, "the call was cancelled or its deadline passed");
}

function toStatus(error: unknown, mapError: ErrorMapper | undefined): Partial<StatusObject> {
  if (error instanceof RpcError) return { code: error.code, details: error.details, metadata: error.metadata ?? new Metadata() };
  if (mapError) {
    const mapped = mapError(error);
    return { code: mapped.code, details: mapped.details, metadata: ("metadata" in mapped && mapped.metadata) || new Metadata() };
  }
  return { code: status.INTERNAL, details: "internal error", metadata: new Metadata() };
}

/**
 * Decodes (and authorizes) the request stream. The iterator must not destroy
 * the call when reading ends: on a bidi call that would also close the
 * response side before the handler has written its last messages and the
 * status. `onError` learns of a message that failed, so that the call fails
 * even if the handler swallows the error.
 */
async function* decodeStream(
  method: DescMethod,
  stream: Readable,
  context: CallContext,
  authorize: Authorizer | undefined,
  onError: (error: unknown) => void,
  maxFields: number | undefined,
): AsyncIterable<Message> {
  try {
    for await (const chunk of stream.iterator({ destroyOnReturn: false })) {
      const request = decodeRequest(method.input, chunk as Buffer, maxFields);
      authorize?.(method, request, context);
      yield request;
    }
  } catch (err) {
    // grpc-js destroys the request stream when it ends the call itself (client cancelled, message over the size
    // limit): that is not a handler failure to log.
    const cancelled = (stream as { cancelled?: boolean }).cancelled === true || (err as { code?: unknown }).code === "ERR_STREAM_PREMATURE_CLOSE";
    const error = cancelled && !(err instanceof RpcError) ? new RpcError(status.CANCELLED, "the call ended before its request stream did", { cause: err }) : err;
    onError(error);
    throw error;
  }
}

async function writeAll(
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
  responses: AsyncIterable<ResponseOf<DescMessage>>,
): Promise<void> {
  for await (const response of responses) {
    if (call.cancelled) return;
    if (!call.write(response)) await untilAny(call, ["drain", "cancelled", "close", "error"]);
  }
}

/** Resolves at the first of `events` on `emitter`, then removes every listener it added. */
function untilAny(emitter: { once(event: string, listener: () => void): unknown; removeListener(event: string, listener: () => void): unknown }, events: readonly string[]): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      for (const event of events) emitter.removeListener(event, done);
      resolve();
    };
    for (const event of events) emitter.once(event, done);
  });
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === "function";
}

/**
 * How a call ends: the first outcome wins, so a handler that finishes after
 * the deadline ceiling (or a failed stream message) ended the call is ignored.
 */
function ending(context: () => ServerCallContext, ok: () => void, fail: (error: unknown) => void) {
  let ended = false;
  let streamError: { error: unknown } | undefined;
  const end = (action: () => void) => {
    if (ended) return;
    ended = true;
    context().close();
    try {
      action();
    } catch (err) {
      fail(err); // grpc-js serializes the response itself (and answers INTERNAL when that fails); this guards what else may throw
    }
  };
  return {
    ok: () => end(() => (streamError ? fail(streamError.error) : ok())),
    fail: (error: unknown) => end(() => fail(error)),
    /** A request message failed to decode or was refused. */
    streamFailed: (error: unknown) => void (streamError ??= { error }),
  };
}

function wrapHandler(method: DescMethod, handler: unknown, options: ServerAdapterOptions): unknown {
  const { input } = method;
  const { mapError, authorize, maxRequestFields } = options;
  const maxDeadlineMs = typeof options.maxDeadlineMs === "function" ? options.maxDeadlineMs(method) : options.maxDeadlineMs;
  if (maxDeadlineMs !== undefined && !(Number.isInteger(maxDeadlineMs) && maxDeadlineMs > 0 && maxDeadlineMs <= MAX_TIMER_MS)) {
    throw new RangeError(`maxDeadlineMs of ${method.name} must be an integer from 1 to ${MAX_TIMER_MS}, got ${maxDeadlineMs}`);
  }
  const asStatus = (err: unknown) => toStatus(err, mapError) as ServiceError;
  switch (method.methodKind) {
    case "unary": {
      const fn = handler as UnaryHandler<DescMessage, DescMessage>;
      return (call: ServerUnaryCall<Buffer, unknown>, callback: sendUnaryData<unknown>) => {
        let response: MessageInitShape<DescMessage> = {};
        const end = ending(() => context, () => callback(null, response), (err) => callback(asStatus(err)));
        const context = new ServerCallContext(call, maxDeadlineMs, end.fail);
        const succeed = (res: MessageInitShape<DescMessage>) => {
          response = res;
          end.ok();
        };
        try {
          authorize?.(method, undefined, context);
          const request = decodeRequest(input, call.request, maxRequestFields);
          authorize?.(method, request, context);
          const result = fn(request, context);
          if (isPromise(result)) result.then(succeed, end.fail);
          else succeed(result);
        } catch (err) {
          end.fail(err);
        }
      };
    }
    case "client_streaming": {
      const fn = handler as ClientStreamingHandler<DescMessage, DescMessage>;
      return (call: ServerReadableStream<Buffer, unknown>, callback: sendUnaryData<unknown>) => {
        let response: MessageInitShape<DescMessage> = {};
        const end = ending(() => context, () => callback(null, response), (err) => callback(asStatus(err)));
        const context = new ServerCallContext(call, maxDeadlineMs, end.fail);
        try {
          authorize?.(method, undefined, context);
        } catch (err) {
          end.fail(err);
          return;
        }
        fn(decodeStream(method, call, context, authorize, end.streamFailed, maxRequestFields), context).then((res) => {
          response = res;
          end.ok();
        }, end.fail);
      };
    }
    case "server_streaming": {
      const fn = handler as ServerStreamingHandler<DescMessage, DescMessage>;
      return (call: ServerWritableStream<Buffer, unknown>) => {
        const end = ending(() => context, () => call.end(), (err) => call.emit("error", toStatus(err, mapError)));
        const context = new ServerCallContext(call, maxDeadlineMs, end.fail);
        const run = async () => {
          authorize?.(method, undefined, context);
          const request = decodeRequest(input, call.request, maxRequestFields);
          authorize?.(method, request, context);
          await writeAll(call, fn(request, context));
        };
        run().then(end.ok, end.fail);
      };
    }
    case "bidi_streaming": {
      const fn = handler as BidiStreamingHandler<DescMessage, DescMessage>;
      return (call: ServerDuplexStream<Buffer, unknown>) => {
        const end = ending(() => context, () => call.end(), (err) => call.emit("error", toStatus(err, mapError)));
        const context = new ServerCallContext(call, maxDeadlineMs, end.fail);
        const run = async () => {
          authorize?.(method, undefined, context);
          await writeAll(call, fn(decodeStream(method, call, context, authorize, end.streamFailed, maxRequestFields), context));
        };
        run().then(end.ok, end.fail);
      };
    }
  }
}

/** Registers `impl` for `service` on a grpc-js server. */
export function addService<S extends DescService>(
  server: { addService(definition: ServiceDefinition, implementation: UntypedServiceImplementation): void },
  service: S,
  impl: ServiceImpl<S>,
  options: ServerAdapterOptions = {},
): void {
  const implementation: UntypedServiceImplementation = {};
  const handlers = impl as Record<string, unknown>;
  for (const method of service.methods) {
    const handler = handlers[method.localName];
    if (typeof handler !== "function") throw new TypeError(`no handler for ${method.parent.typeName}.${method.name}`);
    implementation[method.localName] = wrapHandler(method, handler.bind(impl), options) as UntypedServiceImplementation[string];
  }
  server.addService(serverDefinition(service), implementation);
}

/** Longest call timeout a client accepts, in ms (Node's longest timer, about 24.8 days). */
export const MAX_CALL_TIMEOUT_MS = MAX_TIMER_MS;

/** Why `timeoutMs` cannot be a call's timeout (not a number from over 0 to {@link MAX_CALL_TIMEOUT_MS}), or undefined when it can. */
export function timeoutProblem(name: string, timeoutMs: unknown): string | undefined {
  if (typeof timeoutMs === "number" && Number.isFinite(timeoutMs) && timeoutMs > 0 && timeoutMs <= MAX_CALL_TIMEOUT_MS) return undefined;
  return `${name} must be a number of ms over 0 and at most ${MAX_CALL_TIMEOUT_MS}, got ${String(timeoutMs)}`;
}

function checkedDeadline(deadline: Date | number): number {
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  if (ms === Infinity) return ms;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms > Date.now() + MAX_CALL_TIMEOUT_MS) {
    throw new RpcError(status.INVALID_ARGUMENT, `deadline must be Infinity or a time at most ${MAX_CALL_TIMEOUT_MS} ms from now, got ${String(deadline)}`);
  }
  return ms;
}

/**
 * The grpc-js options of a call; throws RpcError INVALID_ARGUMENT for a
 * deadline or timeout grpc-js would refuse later, out of reach of the caller
 * (it throws "Deadline is too far in the future" from a callback).
 */
function grpcCallOptions(options: CallOptions | undefined, defaultTimeoutMs: number | undefined): GrpcCallOptions {
  if (options?.deadline !== undefined) return { deadline: checkedDeadline(options.deadline) };
  const timeout = options?.timeoutMs ?? defaultTimeoutMs;
  if (timeout === undefined) return {};
  const problem = timeoutProblem("timeoutMs", timeout);
  if (problem !== undefined) throw new RpcError(status.INVALID_ARGUMENT, problem);
  return { deadline: Date.now() + timeout };
}

/** A response stream that fails with `error` when read (streaming methods never throw synchronously). */
async function* failedStream(error: unknown): AsyncIterable<never> {
  throw error;
}

/** What a call made after its client's close() fails with, on every path: grpc-js would throw a bare Error. */
function closedClientError(method: DescMethod): RpcError {
  return new RpcError(status.CANCELLED, `${method.name} was called after the client was closed`);
}

function toRpcError(err: ServiceError): RpcError {
  return new RpcError(err.code, err.details, { cause: err, metadata: err.metadata });
}

/**
 * Writes the caller's requests with back-pressure. When the call ends early
 * (the server answered or failed it), the wait for "drain" ends too and
 * leaving the loop closes the caller's iterator, so its resources are freed.
 */
async function pump<T>(
  stream: {
    write(message: T): boolean;
    end(): void;
    once(event: string, cb: () => void): unknown;
    removeListener(event: string, cb: () => void): unknown;
  },
  requests: AsyncIterable<T> | Iterable<T>,
  isDone: () => boolean,
): Promise<void> {
  for await (const request of requests) {
    if (isDone()) return;
    if (!stream.write(request)) await untilAny(stream, ["drain", "status", "error", "close"]);
    if (isDone()) return;
  }
  if (!isDone()) stream.end();
}

async function* readAll<O>(stream: ClientReadableStream<O> | ClientDuplexStream<unknown, O>, onDone: () => void): AsyncIterable<O> {
  try {
    for await (const message of stream) yield message as O;
  } catch (err) {
    throw toRpcError(err as ServiceError);
  } finally {
    onDone();
    stream.cancel();
  }
}

/** Options of {@link createClient}. */
export interface ClientAdapterOptions {
  /** grpc-js channel options (keepalive, message sizes, service config). */
  channelOptions?: ChannelOptions;
  /** Deadline applied to calls that set none, in ms. */
  defaultTimeoutMs?: number;
}

/** grpc-js client options that add interceptors, which only its own call path runs. */
const INTERCEPTING_OPTIONS = ["interceptors", "interceptor_providers", "callInvocationTransformer"] as const;

/**
 * A typed client of `service` at `address` (e.g. `"127.0.0.1:50051"`). Its
 * unary calls go straight to the channel (channel-unary-call.ts) unless
 * `channelOptions` bring grpc-js interceptors, which only grpc-js's own call
 * path runs.
 */
export function createClient<S extends DescService>(
  service: S,
  address: string,
  credentials: ChannelCredentials,
  options: ClientAdapterOptions = {},
): ServiceClient<S> {
  const client = new Client(address, credentials, options.channelOptions);
  const timeout = options.defaultTimeoutMs;
  const intercepted = INTERCEPTING_OPTIONS.some((name) => options.channelOptions?.[name] !== undefined);
  let closed = false;
  const methods: Record<string, unknown> = {
    close: () => {
      closed = true;
      client.close();
    },
    grpcClient: client,
  };
  for (const method of service.methods) {
    const methodPath = path(method);
    const serialize = messageCodec(method.input).encode;
    const deserialize = messageCodec(method.output).decode;
    const metadataOf = (opts: CallOptions | undefined) => opts?.metadata ?? new Metadata();
    switch (method.methodKind) {
      case "unary":
        methods[method.localName] = intercepted
          ? (request: MessageInitShape<DescMessage>, opts?: CallOptions) =>
              new Promise((resolve, reject) => {
                if (closed) throw closedClientError(method);
                let unlink = () => {};
                const call = client.makeUnaryRequest(methodPath, serialize, deserialize, request, metadataOf(opts), grpcCallOptions(opts, timeout), (err, res) => {
                  unlink();
                  if (err) reject(toRpcError(err));
                  else resolve(res);
                });
                unlink = linkSignal(call, opts?.signal);
              })
          : async (request: MessageInitShape<DescMessage>, opts?: CallOptions) => {
              if (closed) throw closedClientError(method);
              try {
                return await channelUnaryCall({
                  client,
                  path: methodPath,
                  deadline: () => grpcCallOptions(opts, timeout).deadline,
                  encode: () => serialize(request),
                  decode: deserialize,
                  metadata: metadataOf(opts),
                  signal: opts?.signal,
                });
              } catch (err) {
                // Made here, after the await, the RpcError's stack ends with the async frames of the callers that await it
                // (where the call came from); those that use .then or callbacks are not named (README.md).
                throw isServiceError(err) ? toRpcError(err) : err;
              }
            };
        break;
      case "server_streaming":
        methods[method.localName] = (request: MessageInitShape<DescMessage>, opts?: CallOptions) => {
          if (closed) return failedStream(closedClientError(method));
          let callOptions: GrpcCallOptions;
          try {
            callOptions = grpcCallOptions(opts, timeout);
          } catch (err) {
            return failedStream(err);
          }
          const call = client.makeServerStreamRequest(methodPath, serialize, deserialize, request, metadataOf(opts), callOptions);
          return readAll(call, linkSignal(call, opts?.signal));
        };
        break;
      case "client_streaming":
        methods[method.localName] = (requests: AsyncIterable<MessageInitShape<DescMessage>>, opts?: CallOptions) =>
          new Promise((resolve, reject) => {
            if (closed) throw closedClientError(method);
            let done = false;
            let unlink = () => {};
            const call = client.makeClientStreamRequest(methodPath, serialize, deserialize, metadataOf(opts), grpcCallOptions(opts, timeout), (err, res) => {
              done = true;
              unlink();
              if (err) reject(toRpcError(err));
              else resolve(res);
            });
            unlink = linkSignal(call, opts?.signal);
            pump(call, requests, () => done).catch((err: unknown) => {
              done = true;
              call.cancel();
              reject(err);
            });
          });
        break;
      case "bidi_streaming":
        methods[method.localName] = (requests: AsyncIterable<MessageInitShape<DescMessage>>, opts?: CallOptions) => {
          if (closed) return failedStream(closedClientError(method));
          let callOptions: GrpcCallOptions;
          try {
            callOptions = grpcCallOptions(opts, timeout);
          } catch (err) {
            return failedStream(err);
          }
          const call = client.makeBidiStreamRequest(methodPath, serialize, deserialize, metadataOf(opts), callOptions);
          let done = false;
          const unlink = linkSignal(call, opts?.signal);
          let pumpError: unknown;
          pump(call, requests, () => done).catch((err: unknown) => {
            pumpError = err;
            call.cancel();
          });
          return (async function* () {
            try {
              yield* readAll(call, unlink);
            } catch (err) {
              throw pumpError ?? err;
            } finally {
              done = true;
            }
            if (pumpError !== undefined) throw pumpError;
          })();
        };
        break;
    }
  }
  return methods as ServiceClient<S>;
}
