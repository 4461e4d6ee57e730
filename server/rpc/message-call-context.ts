import type { Metadata } from "@grpc/grpc-js";
import type { CallContext } from "../../core/grpc-adapter.js";
import { RpcError, Status } from "../../core/rpc-error.js";

/**
 * The context of one call carried as a message of a stream (LeaseSession):
 * it ends at its own deadline or when the stream ends, whichever is first,
 * and shares the stream's metadata and peer. `stream` is the stream's
 * context, which access control knows the caller by.
 */
export class MessageCallContext implements CallContext {
  readonly stream: CallContext;
  readonly deadline: number;
  #reason: unknown;
  #listeners: ((reason: unknown) => void)[] | undefined;
  #controller: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #unlink: () => void;

  /** `timeoutMs`: from now; the stream's own deadline still applies. */
  constructor(stream: CallContext, timeoutMs: number) {
    this.stream = stream;
    this.deadline = Math.min(stream.deadline, Date.now() + timeoutMs);
    this.#timer = setTimeout(() => this.cancel(new RpcError(Status.DEADLINE_EXCEEDED, `deadline exceeded after ${timeoutMs} ms`)), timeoutMs);
    this.#unlink = stream.onCancel((reason) => this.cancel(reason));
  }

  get metadata(): Metadata {
    return this.stream.metadata;
  }

  get peer(): string {
    return this.stream.peer;
  }

  get cancelReason(): unknown {
    return this.#reason;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#reason !== undefined) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  onCancel(listener: (reason: unknown) => void): () => void {
    if (this.#reason !== undefined) {
      listener(this.#reason);
      return () => {};
    }
    (this.#listeners ??= []).push(listener);
    return () => {
      const at = this.#listeners?.indexOf(listener) ?? -1;
      if (at >= 0) this.#listeners!.splice(at, 1);
    };
  }

  /** The call was answered: stop its timer and stop listening to the stream. */
  close(): void {
    clearTimeout(this.#timer);
    this.#unlink();
    this.#listeners = undefined;
  }

  /** Ends the call early with `reason` (what `signal.reason` becomes). */
  cancel(reason: unknown): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    clearTimeout(this.#timer);
    const listeners = this.#listeners;
    this.#listeners = undefined;
    this.#controller?.abort(reason);
    if (listeners) for (const listener of listeners) listener(reason);
  }
}
