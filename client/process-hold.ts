import type { Socket } from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import { ChannelCredentials, type CallCredentials } from "@grpc/grpc-js";
import { MAX_TIMER_MS } from "../core/clock.js";
import type { CallOptions, ServiceClient } from "../core/grpc-adapter.js";

type AnyMethod = (request: unknown, options?: CallOptions) => unknown;

/**
 * Holds the process open while calls are in flight (for a response stream:
 * while the caller awaits its next message), and only then. grpc-js
 * holds it while any call is open on a connection, the endless Watch stream
 * behind a client's local tier included, so an unclosed client with a local
 * tier would keep a finished program running. With {@link unheldCredentials}
 * the connection never holds the process, and this hold does it for the
 * calls a program awaits.
 */
export class ProcessHold {
  #calls = 0;
  #closed = false;
  readonly #timer = setInterval(() => {}, MAX_TIMER_MS).unref();

  begin(): void {
    if (this.#calls++ === 0 && !this.#closed) this.#timer.ref();
  }

  end(): void {
    if (--this.#calls > 0) return;
    if (this.#closed) clearInterval(this.#timer);
    else this.#timer.unref();
  }

  /** Frees the hold once no call is in flight: the calls already sent still hold the process until they end. */
  close(): void {
    this.#closed = true;
    if (this.#calls === 0) clearInterval(this.#timer);
  }
}

/**
 * `responses`, holding the process only while the caller awaits a step of it
 * (`next`, `return`, `throw`): a stream the caller stops reading without
 * finishing it must not keep the program running, as it would not without
 * a local tier.
 */
function heldStream(responses: AsyncIterable<unknown>, hold: ProcessHold): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<unknown> {
      const inner = responses[Symbol.asyncIterator]();
      const held = (step: () => Promise<IteratorResult<unknown>>): Promise<IteratorResult<unknown>> => {
        hold.begin();
        let pending: Promise<IteratorResult<unknown>>;
        try {
          pending = step();
        } catch (err) {
          pending = Promise.reject(err);
        }
        return pending.finally(() => hold.end());
      };
      return {
        next: () => held(() => inner.next()),
        return: (value?: unknown) => held(() => (inner.return ? inner.return(value) : Promise.resolve({ done: true, value }))),
        throw: (error?: unknown) => held(() => (inner.throw ? inner.throw(error) : Promise.reject(error))),
      };
    },
  };
}

/** `client` with every call but those named in `unheld` (by local name, e.g. `watch`) holding the process through `hold`. */
export function heldClient<S extends DescService>(service: S, client: ServiceClient<S>, hold: ProcessHold, unheld: readonly string[]): ServiceClient<S> {
  const methods = client as unknown as Record<string, AnyMethod>;
  const wrapped: Record<string, unknown> = {
    close: () => {
      hold.close();
      client.close();
    },
    grpcClient: client.grpcClient,
  };
  for (const method of service.methods) {
    const call = methods[method.localName]!;
    if (unheld.includes(method.localName)) {
      wrapped[method.localName] = call;
      continue;
    }
    const streamsResponses = method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";
    wrapped[method.localName] = (request: unknown, options?: CallOptions) => {
      if (streamsResponses) return heldStream(call(request, options) as AsyncIterable<unknown>, hold);
      hold.begin();
      let result: unknown;
      try {
        result = call(request, options);
      } catch (err) {
        hold.end();
        throw err;
      }
      return (result as Promise<unknown>).finally(() => hold.end());
    };
  }
  return wrapped as ServiceClient<S>;
}

/** Unrefs `socket` for good: grpc-js refs a connection's socket again whenever a call starts on it. */
function neverHold(socket: Socket): void {
  socket.unref();
  socket.ref = () => socket;
}

type ConnectorOf = ChannelCredentials["_createSecureConnector"];

/**
 * Channel credentials that connect as `inner` does, but whose connections
 * never hold the process open (see {@link ProcessHold}). Relies on grpc-js's
 * `ChannelCredentials._createSecureConnector` (grpc-js 1.12 and later).
 */
class UnheldCredentials extends ChannelCredentials {
  readonly #inner: ChannelCredentials;

  constructor(inner: ChannelCredentials) {
    super();
    this.#inner = inner;
  }

  override _isSecure(): boolean {
    return this.#inner._isSecure();
  }

  override _equals(other: ChannelCredentials): boolean {
    return other instanceof UnheldCredentials && other.#inner._equals(this.#inner);
  }

  override _createSecureConnector(...args: Parameters<ConnectorOf>): ReturnType<ConnectorOf> {
    const connector = this.#inner._createSecureConnector(...args);
    return {
      connect: async (socket: Socket) => {
        neverHold(socket);
        const result = await connector.connect(socket);
        neverHold(result.socket);
        return result;
      },
      waitForReady: () => connector.waitForReady(),
      getCallCredentials: (): CallCredentials => connector.getCallCredentials(),
      destroy: () => connector.destroy(),
    };
  }
}

/** `inner` whose connections never hold the process open. */
export function unheldCredentials(inner: ChannelCredentials): ChannelCredentials {
  return new UnheldCredentials(inner);
}
