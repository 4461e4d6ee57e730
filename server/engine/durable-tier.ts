import type { Change } from "./invalidation-bus.js";

/** One write to a durable tier: an encoded value envelope and its expiry. */
export interface DurableWrite {
  readonly key: string;
  /** The value envelope (see core/codec.ts), stored and returned as is. It shares memory with nothing outside its batch (ioredis may keep it until Redis answers); a tier that keeps it for long copies it. */
  readonly envelope: Uint8Array;
  /** Absolute expiry in ms since the epoch; 0 = never. */
  readonly expiresAt: number;
}

/**
 * The scope of the RPC a tier call serves: a remote tier stops waiting (and
 * does not retry) once the signal aborts or the deadline passes.
 */
export interface CallScope {
  readonly signal?: AbortSignal;
  /** Why the call ended early, or undefined; when the scope has {@link onCancel}, hot paths read this instead of `signal` (see scope-cancel.ts). */
  readonly cancelReason?: unknown;
  /** Calls `listener` once when the call ends early (at once if it has); returns a function that stops listening. Cheaper than a listener on `signal`. */
  onCancel?(listener: (reason: unknown) => void): () => void;
  /** ms since the epoch; Infinity = none. */
  readonly deadline?: number;
  /** The quota of the access token a write came with, if it has one (the engine charges new namespaces to it). */
  readonly tenant?: Tenant;
}

/** A quota of what one access token's writes may hold: namespaces they start, and bytes those hold together. */
export interface Tenant {
  /** Names the token without naming it (e.g. "token #3"). */
  readonly id: string;
  readonly maxNamespaces: number;
  readonly maxBytes: number;
}

/** What a durable tier holds, from its own bookkeeping. */
export interface DurableFootprint {
  readonly entries: number;
  readonly bytes: number;
}

/** What {@link DurableTier.tagEpochs} read. */
export interface TagEpochs {
  /** The namespace's tag counter now: a value written from now on records it. */
  readonly counter: number;
  /** The invalidation epoch of each tag asked for, in order; 0 = never invalidated. */
  readonly epochs: readonly number[];
}

/** The name a tier reports in responses and statistics. */
export type TierName = "memory" | "lmdb" | "redis";

/**
 * A durable tier below the memory tier: the embedded LMDB store or Redis.
 *
 * It stores opaque envelopes per namespace and key, never returns an expired
 * one, and resolves a write only once the write is stored. Failures reject
 * with a `TierUnavailableError` when the tier cannot be reached.
 */
export interface DurableTier {
  readonly name: Exclude<TierName, "memory">;
  get(namespace: string, key: string, scope?: CallScope): Promise<Uint8Array | undefined>;
  /** One result per key, in order. */
  getMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<(Uint8Array | undefined)[]>;
  set(namespace: string, write: DurableWrite, scope?: CallScope): Promise<void>;
  /** All or nothing. */
  setMany(namespace: string, writes: readonly DurableWrite[], scope?: CallScope): Promise<void>;
  /** True when the key held an unexpired value. */
  delete(namespace: string, key: string, scope?: CallScope): Promise<boolean>;
  /** How many of the keys held an unexpired value. */
  deleteMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<number>;
  has(namespace: string, key: string, scope?: CallScope): Promise<boolean>;
  /** Sets a new expiry on an unexpired key; false when absent. */
  touch(namespace: string, key: string, expiresAt: number, scope?: CallScope): Promise<boolean>;
  /** Removes every key of the namespace and nothing else (its tag epochs stay: they only ever grow). */
  clear(namespace: string, scope?: CallScope): Promise<void>;
  /**
   * The namespace's tag counter and the invalidation epoch of each tag (0 =
   * never invalidated), in one read (see engine/tag-table.ts).
   */
  tagEpochs(namespace: string, tags: readonly string[], scope?: CallScope): Promise<TagEpochs>;
  /**
   * Bumps the namespace's tag counter and records the new value as the
   * invalidation epoch of every tag, atomically, durably; resolves with it.
   * Repeating it is harmless (it only hides more).
   */
  invalidateTags(namespace: string, tags: readonly string[], scope?: CallScope): Promise<number>;
  close(): Promise<void>;
  /**
   * Entries the tier holds (all namespaces, expired ones not yet swept
   * included) and the bytes holding them, when the tier can tell in O(1)
   * without a scan; undefined (or no method) when it cannot: statistics
   * then omit these figures rather than report 0.
   */
  footprint?(): DurableFootprint | undefined;
  /** Leases shared by every server instance over this tier (Redis); absent when leases stay per instance. */
  readonly leases?: SharedLeases;
}

/**
 * What a {@link SharedLeases.acquire} found: the lease is the caller's; or
 * another holder keeps it this many ms more; or (`freshValue`) nobody holds
 * it but the key holds a fresh value now (written since the caller read it).
 */
export type LeaseAttempt = { readonly acquired: true } | { readonly acquired: false; readonly heldForMs: number; readonly freshValue?: true };

/** A lease request that failed, with why (see {@link ReadAndLease}). */
export interface LeaseRequestFailed {
  readonly failed: unknown;
}

/**
 * What {@link SharedLeases.readAndAcquire} found: the key's live envelope
 * (undefined when none), and the lease attempt; or, when the read succeeded
 * but the lease request failed (Redis serving reads and refusing writes: full
 * under noeviction, or a read-only replica), that failure.
 */
export interface ReadAndLease {
  readonly envelope: Uint8Array | undefined;
  readonly attempt: LeaseAttempt | LeaseRequestFailed;
}

/**
 * Leases kept in the durable tier so that callers of every server instance
 * over it share them: at most one holder per (namespace, key), lapsing after
 * its duration.
 */
export interface SharedLeases {
  /**
   * Takes the lease for `token` unless another holds it, or (`unlessFresh`)
   * the key holds a fresh value, or (`seenExpiresAt`, an eager refresh) the key
   * holds a value other than the copy the caller saw, whose absolute expiry
   * that is: someone wrote it since, so there is nothing to refresh. Both
   * refusals for a value say `freshValue`.
   */
  acquire(namespace: string, key: string, token: string, durationMs: number, unlessFresh: boolean, scope?: CallScope, seenExpiresAt?: number): Promise<LeaseAttempt>;
  /**
   * {@link acquire} with `unlessFresh`, and the key's envelope as
   * {@link DurableTier.get} returns it, in one round trip: the read that
   * comes before a lease. Optional: without it the engine reads, then acquires.
   */
  readAndAcquire?(namespace: string, key: string, token: string, durationMs: number, scope?: CallScope): Promise<ReadAndLease>;
  /** Ends the lease if `token` holds it; true when it did. */
  release(namespace: string, key: string, token: string): Promise<boolean>;
  /**
   * The write of a lease holder, fenced: stored (and the lease ended) when
   * `token` holds the lease or nobody does; refused (false, nothing written)
   * when another caller holds it, i.e. this holder's lease lapsed and was
   * taken over. Atomic with respect to acquire and release. `change` is the
   * change the engine publishes once the write settles: a tier may announce
   * it to the other server instances within the write itself.
   */
  setFenced(namespace: string, write: DurableWrite, token: string, scope?: CallScope, change?: Change): Promise<boolean>;
}
