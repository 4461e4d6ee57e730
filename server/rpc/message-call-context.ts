import type { Metadata } from "@grpc/grpc-js";
import type { CallContext } from "../../core/grpc-adapter.js";
import { RpcError, Status } from "../../core/rpc-error.js";
import { Cancellation } from "../../core/cancellation.js";

/**
 * The context of one call carried as a message of a stream (LeaseSession):
 * it ends at its own deadline or when the stream ends, whichever is first,
 * and shares the stream's metadata and peer. `stream` is the stream's
 * context, which access control knows the caller by.
 */
export class MessageCallContext extends Cancellation implements CallContext {
  readonly stream: CallContext;
  readonly deadline: number;
  #timer: NodeJS.Timeout | undefined;
  #unlink: () => void;

  /** `timeoutMs`: from now; the stream's own deadline still applies. */
  constructor(stream: CallContext, timeoutMs: number) {
    super();
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

  /** The call was answered: stop its timer and stop listening to the stream. */
  close(): void {
    clearTimeout(this.#timer);
    this.#unlink();
    this.forgetListeners();
  }

  /** Ends the call early with `reason` (what `signal.reason` becomes). Public here: the stream cancels its calls. */
  public override cancel(reason: unknown): void {
    super.cancel(reason, () => clearTimeout(this.#timer));
  }
}
