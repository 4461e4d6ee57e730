import { Metadata } from "@grpc/grpc-js";
import type { CallContext } from "../../core/grpc-adapter.js";
import { listenToAbort } from "../../server/engine/scope-cancel.js";

/** A CallContext driven by `signal`, as a handler sees one (for calling handlers without a server). */
export function callContextOf(signal: AbortSignal, metadata = new Metadata()): CallContext {
  return {
    signal,
    get cancelReason() {
      return signal.aborted ? signal.reason : undefined;
    },
    onCancel(listener) {
      if (signal.aborted) {
        listener(signal.reason);
        return () => {};
      }
      return listenToAbort(signal, listener);
    },
    deadline: Infinity,
    metadata,
    peer: "test",
  };
}
