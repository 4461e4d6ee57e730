import { Metadata, status } from "@grpc/grpc-js";

/** gRPC status codes, re-exported so callers need not import grpc-js. */
export { status as Status };

/** The name of a gRPC status code, e.g. `"NOT_FOUND"`. */
export type StatusName = keyof typeof status;

/** Returns the name of a gRPC status code, e.g. `statusName(5) === "NOT_FOUND"`. */
export function statusName(code: number): string {
  return status[code] ?? `UNKNOWN_STATUS_${code}`;
}

/**
 * An RPC that ended with a non-OK gRPC status.
 *
 * The server throws it from handlers to choose the status a client sees; the
 * client raises it for every failed call, so `err.code` tells what happened.
 */
export class RpcError extends Error {
  override readonly name = "RpcError";
  /** The gRPC status code (see {@link Status}). */
  readonly code: status;
  /** The status message, without the code prefix. */
  readonly details: string;
  /** Trailing metadata sent with the status, when there was any. */
  readonly metadata: Metadata | undefined;

  constructor(code: status, details: string, options?: { cause?: unknown; metadata?: Metadata | undefined }) {
    super(`${statusName(code)}: ${details}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = details;
    this.metadata = options?.metadata;
  }

  /** True when `err` is an RpcError carrying `code` (any code when omitted). */
  static is(err: unknown, code?: status): err is RpcError {
    return err instanceof RpcError && (code === undefined || err.code === code);
  }
}
