import { status } from "@grpc/grpc-js";
import { CorruptValueError, InvalidArgumentError, LeaseLostError, TierUnavailableError, ValueTooLargeError } from "../../core/errors.js";
import type { Logger } from "../logger.js";

/**
 * The one place where domain errors become gRPC statuses. Messages of domain
 * errors are written for the client; anything else is logged with its cause
 * and reaches the client as a bare INTERNAL.
 */
export function errorToStatus(logger: Logger): (error: unknown) => { code: status; details: string } {
  return (error) => {
    if (error instanceof InvalidArgumentError) return { code: status.INVALID_ARGUMENT, details: error.message };
    if (error instanceof ValueTooLargeError) return { code: status.RESOURCE_EXHAUSTED, details: error.message };
    if (error instanceof LeaseLostError) return { code: status.FAILED_PRECONDITION, details: error.message };
    if (error instanceof TierUnavailableError) {
      logger.warn("tier unavailable", { error: error.message });
      return { code: status.UNAVAILABLE, details: error.message };
    }
    if (error instanceof CorruptValueError) {
      logger.error("corrupt stored value", { error: error.message });
      return { code: status.DATA_LOSS, details: error.message };
    }
    logger.error("unexpected error in handler", { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    return { code: status.INTERNAL, details: "internal error" };
  };
}
