/** One write to a durable tier: an encoded value envelope and its expiry. */
export interface DurableWrite {
  readonly key: string;
  /** The value envelope (see core/codec.ts), stored and returned as is. */
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
}
