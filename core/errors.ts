/**
 * Domain errors raised inside tiercache.
 *
 * Each class carries a stable string `code` and keeps the original `cause`.
 * They are converted to a gRPC status in exactly one place at the edge; the
 * cause belongs in the log, not in the message a client sees.
 */

/** The stable codes of {@link TiercacheError} subclasses. */
export type TiercacheErrorCode = "INVALID_ARGUMENT" | "LIMIT_EXCEEDED" | "CORRUPT_VALUE" | "TIER_UNAVAILABLE" | "LEASE_LOST";

/** Options accepted by every {@link TiercacheError} constructor. */
export interface TiercacheErrorOptions {
  /** The underlying error, kept as `err.cause`. */
  cause?: unknown;
}

/** Base class of all tiercache domain errors. */
export abstract class TiercacheError extends Error {
  /** Stable, machine-readable code; never changes for a given class. */
  abstract readonly code: TiercacheErrorCode;

  constructor(message: string, options?: TiercacheErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** A caller passed a malformed or out-of-range argument (key, TTL, content type, option...). */
export class InvalidArgumentError extends TiercacheError {
  override readonly name = "InvalidArgumentError";
  override readonly code = "INVALID_ARGUMENT";
}

/**
 * A configured limit was exceeded: a value over `maxValueBytes`, a batch too
 * large, too many namespaces. RESOURCE_EXHAUSTED family.
 */
export class ValueTooLargeError extends TiercacheError {
  override readonly name = "ValueTooLargeError";
  override readonly code = "LIMIT_EXCEEDED";
}

/** A stored envelope or serialized value is malformed, truncated or of an unknown format. */
export class CorruptValueError extends TiercacheError {
  override readonly name = "CorruptValueError";
  override readonly code = "CORRUPT_VALUE";
}

/** A storage tier cannot serve the request (closed, failed to open, I/O error, breaker open). */
export class TierUnavailableError extends TiercacheError {
  override readonly name = "TierUnavailableError";
  override readonly code = "TIER_UNAVAILABLE";
}

/** A write carrying a lease token was refused: the lease lapsed and another caller holds it now. */
export class LeaseLostError extends TiercacheError {
  override readonly name = "LeaseLostError";
  override readonly code = "LEASE_LOST";
}

/** True when `err` is a tiercache domain error (optionally with the given `code`). */
export function isTiercacheError(err: unknown, code?: TiercacheErrorCode): err is TiercacheError {
  return err instanceof TiercacheError && (code === undefined || err.code === code);
}
