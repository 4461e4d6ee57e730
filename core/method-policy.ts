import type { CacheService } from "../gen/tiercache/v1/cache_pb.js";
import { Status } from "./rpc-error.js";

/** A method of tiercache.v1.CacheService, by its generated (camelCase) name. */
export type CacheMethod = keyof typeof CacheService.method;

/** The right an access token needs for a method. */
export type AccessRight = "read" | "write" | "admin";

/** What every RPC must declare before it compiles: who may call it, whether it is retried, how it can fail. */
export interface MethodPolicy {
  /** The right an access token needs, on the namespaces the request names. */
  readonly right: AccessRight;
  /**
   * The client retries it on UNAVAILABLE. Only reads: a write retried after
   * an uncertain first attempt could land after a later write and undo it.
   */
  readonly retryOnUnavailable: boolean;
  /** Every status it may end with besides OK. */
  readonly statuses: readonly Status[];
}

/** Statuses any call may end with: bad input, limits, credentials, deadline, cancellation, a tier that cannot serve. */
const EVERY_CALL = [
  Status.INVALID_ARGUMENT,
  Status.RESOURCE_EXHAUSTED,
  Status.UNAUTHENTICATED,
  Status.PERMISSION_DENIED,
  Status.DEADLINE_EXCEEDED,
  Status.CANCELLED,
  Status.UNAVAILABLE,
] as const;
/** Reads may also meet a stored value that cannot be decoded. */
const READ_CALL = [...EVERY_CALL, Status.DATA_LOSS] as const;

const read: MethodPolicy = { right: "read", retryOnUnavailable: true, statuses: READ_CALL };
const streamRead: MethodPolicy = { right: "read", retryOnUnavailable: false, statuses: READ_CALL };
const write: MethodPolicy = { right: "write", retryOnUnavailable: false, statuses: EVERY_CALL };

/**
 * The policy of every CacheService method. Adding an RPC to the contract
 * fails to compile until it is declared here; the server's access control,
 * the client's retry list and the tests derive from this table.
 */
export const METHOD_POLICIES: { readonly [M in CacheMethod]: MethodPolicy } = Object.freeze({
  get: read,
  has: read,
  getMany: read,
  stats: { right: "admin", retryOnUnavailable: true, statuses: EVERY_CALL },
  streamGet: streamRead,
  watch: streamRead,
  set: write,
  delete: write,
  touch: write,
  setMany: write,
  deleteMany: write,
  streamSet: write,
  clear: { right: "admin", retryOnUnavailable: false, statuses: EVERY_CALL },
  /** A lease lets its holder fill the key and makes other callers wait: a write. It returns values, so it may meet a corrupt one. */
  getOrLease: { right: "write", retryOnUnavailable: false, statuses: READ_CALL },
  releaseLease: write,
  /**
   * Retried, unlike other writes: a repeat (or a first attempt that lands
   * late) can only hide more values (a miss, never a stale hit), while an
   * invalidation given up on would leave stale values readable.
   */
  invalidateTags: { right: "write", retryOnUnavailable: true, statuses: EVERY_CALL },
  /**
   * Carries GetOrLease, Set and ReleaseLease calls (all writes); each is
   * authorized on its own namespace and answered with its own status.
   */
  leaseSession: { right: "write", retryOnUnavailable: false, statuses: READ_CALL },
});
