import { systemClock, type Clock } from "./clock.js";
import { ExpiryHeap } from "./eviction/expiry-heap.js";
import { FifoPolicy } from "./eviction/fifo.js";
import { LfuPolicy } from "./eviction/lfu.js";
import { LruPolicy } from "./eviction/lru.js";
import { NO_SLOT, type EvictionPolicy, type EvictionPolicyName, type SlotStore } from "./eviction/policy.js";
import { TinyLfuPolicy } from "./eviction/tinylfu.js";

export type { EvictionPolicyName } from "./eviction/policy.js";

/** Why an entry left the tier without being deleted or overwritten. */
export type EvictionCause = "size" | "count" | "expired";

/**
 * Bytes added to every entry's accounted size for bookkeeping. Measured on
 * Node 20 (x64): about 54 bytes per entry for LRU/FIFO, 57 for LFU and 62
 * for TinyLFU (map entry, key and value slots, policy links, hashes, sketch),
 * +16 once any entry has an expiry, +4 once entry sizes differ. Key strings
 * themselves are not measured; raise this if keys are long.
 */
export const DEFAULT_ENTRY_OVERHEAD_BYTES = 64;

/**
 * Expired entries reclaimed (earliest expiry first) by each set, besides
 * those reclaimed on access, under bound pressure and by purgeExpired().
 * Two per set outpaces the one entry a set can add.
 */
export const EXPIRED_PURGE_PER_SET = 2;

/** Largest accounted entry size (sizes are kept as 32-bit integers); larger entries are refused. */
export const MAX_ENTRY_BYTES = 2 ** 32 - 1;

/** Slots allocated up front; arrays then double up to the entry bound. */
const INITIAL_SLOTS = 256;
/** {@link MemoryTier.firstSurvivor} counts a later set as sure to be stored only when its value lives at least this much longer. */
export const SURVIVOR_EXPIRY_MARGIN_MS = 1000;
/** Upper bound of EvictionPolicy.reservedSlots. */
const MAX_RESERVED_SLOTS = 4;

const POLICY_NAMES: readonly EvictionPolicyName[] = ["lru", "fifo", "lfu", "tinylfu"];

type MemoryTierBaseOptions<V> = {
  /** Most entries held at once (positive integer). */
  maxEntries?: number;
  /** Most accounted bytes held at once (positive integer); see `sizeOf` and `entryOverheadBytes`. */
  maxBytes?: number;
  /**
   * Which entry to evict when a bound is reached.
   * @default "lru"
   */
  policy?: EvictionPolicyName;
  /**
   * Time source for expiry, in epoch milliseconds.
   * @default systemClock
   */
  clock?: Clock;
  /**
   * Bytes of a value (finite, ≥ 0; rounded up to a whole byte).
   * @default value.byteLength if it is a number, else 0
   */
  sizeOf?: (value: V) => number;
  /**
   * Bytes of a key, added to its entry's accounted size (finite, ≥ 0).
   * @default () => 0 (keys are covered by entryOverheadBytes only)
   */
  sizeOfKey?: (key: string) => number;
  /**
   * Bytes added per entry on top of `sizeOf` (non-negative integer).
   * @default DEFAULT_ENTRY_OVERHEAD_BYTES (64)
   */
  entryOverheadBytes?: number;
  /**
   * Called for entries evicted by a bound ("size" / "count") or reclaimed
   * after expiry ("expired"); never for delete, overwrite or clear. Runs
   * after the operation has finished updating the tier, so it may call the
   * tier; if it throws, the error reaches the caller of that operation and
   * the remaining notifications of that operation are dropped.
   */
  onEvict?: (key: string, value: V, cause: EvictionCause) => void;
};

/**
 * Options for a MemoryTier. At least one of `maxEntries` / `maxBytes` is
 * required, so an unbounded tier does not type-check (and is rejected at
 * runtime).
 */
export type MemoryTierOptions<V> = MemoryTierBaseOptions<V> & ({ maxEntries: number } | { maxBytes: number });

/** Live counters of a MemoryTier since construction (clear() does not reset them). */
export interface MemoryTierStats {
  /** get/getEntry calls that found an unexpired entry. */
  hits: number;
  /** get/getEntry calls that did not. */
  misses: number;
  /** set calls that stored their value. */
  sets: number;
  /** delete calls that removed an unexpired entry. */
  deletes: number;
  /** Entries evicted to respect maxBytes. */
  evictionsSize: number;
  /** Entries evicted to respect maxEntries. */
  evictionsCount: number;
  /** Expired entries reclaimed. */
  expirations: number;
  /** set calls refused: entry larger than maxBytes, or not admitted by TinyLFU. */
  rejections: number;
}

interface ResolvedOptions<V> {
  maxEntries: number;
  maxBytes: number;
  policy: EvictionPolicyName;
  clock: Clock;
  sizeOf: (value: V) => number;
  sizeOfKey: ((key: string) => number) | undefined;
  entryOverheadBytes: number;
  onEvict: ((key: string, value: V, cause: EvictionCause) => void) | undefined;
}

interface PendingEviction<V> {
  key: string;
  value: V;
  cause: EvictionCause;
}

/** `value.byteLength` when it is a number, else 0. */
function defaultSizeOf(value: unknown): number {
  if (typeof value === "object" && value !== null && "byteLength" in value) {
    const length: unknown = value.byteLength;
    if (typeof length === "number") return length;
  }
  return 0;
}

function positiveInteger(name: string, value: unknown): number {
  if (value === undefined) return Infinity;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`MemoryTier: ${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

function optionalFunction<F>(name: string, value: F | undefined): F | undefined {
  if (value !== undefined && typeof value !== "function") {
    throw new TypeError(`MemoryTier: ${name} must be a function`);
  }
  return value;
}

function resolveOptions<V>(options: MemoryTierOptions<V>): ResolvedOptions<V> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("MemoryTier: options must be an object");
  }
  const maxEntries = positiveInteger("maxEntries", options.maxEntries);
  const maxBytes = positiveInteger("maxBytes", options.maxBytes);
  if (maxEntries === Infinity && maxBytes === Infinity) {
    throw new RangeError("MemoryTier: maxEntries or maxBytes is required");
  }
  const policy = options.policy ?? "lru";
  if (!POLICY_NAMES.includes(policy)) {
    throw new RangeError(`MemoryTier: policy must be one of ${POLICY_NAMES.join(", ")}, got ${String(policy)}`);
  }
  const entryOverheadBytes = options.entryOverheadBytes ?? DEFAULT_ENTRY_OVERHEAD_BYTES;
  if (!Number.isSafeInteger(entryOverheadBytes) || entryOverheadBytes < 0) {
    throw new RangeError(
      `MemoryTier: entryOverheadBytes must be a non-negative integer, got ${String(entryOverheadBytes)}`,
    );
  }
  return {
    maxEntries,
    maxBytes,
    policy,
    clock: optionalFunction("clock", options.clock) ?? systemClock,
    sizeOf: optionalFunction("sizeOf", options.sizeOf) ?? defaultSizeOf,
    sizeOfKey: optionalFunction("sizeOfKey", options.sizeOfKey),
    entryOverheadBytes,
    onEvict: optionalFunction("onEvict", options.onEvict),
  };
}

function createPolicy(
  name: EvictionPolicyName,
  capacity: number,
  limits: { maxEntries: number; maxBytes: number },
  store: SlotStore,
): EvictionPolicy {
  switch (name) {
    case "lru":
      return new LruPolicy(capacity);
    case "fifo":
      return new FifoPolicy(capacity);
    case "lfu":
      return new LfuPolicy(capacity);
    case "tinylfu":
      return new TinyLfuPolicy(capacity, limits, store);
  }
}

function checkExpiresAt(expiresAt: number): void {
  if (typeof expiresAt !== "number" || !Number.isFinite(expiresAt) || expiresAt < 0) {
    throw new RangeError(`MemoryTier: expiresAt must be a finite number >= 0, got ${String(expiresAt)}`);
  }
}

/**
 * A bounded in-memory cache tier: string keys, values of type V, bounded by
 * entry count and/or accounted bytes, with a pluggable eviction policy and
 * absolute-time expiry.
 *
 * Entries live in slots of parallel arrays indexed through one Map; the
 * policy orders slots, and a min-heap indexes slots that have an expiry
 * (no timers). Expired entries are never returned; they are reclaimed when
 * accessed, a few per set, first when a bound needs room, and by
 * purgeExpired(). Until then they still count in `size` and `bytes`.
 *
 * For LRU, FIFO and LFU the entry being written is never the one evicted
 * to make room for it; TinyLFU may refuse it (set returns false).
 */
export class MemoryTier<V> {
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #clock: Clock;
  readonly #sizeOf: (value: V) => number;
  readonly #sizeOfKey: ((key: string) => number) | undefined;
  readonly #overhead: number;
  readonly #onEvict: ((key: string, value: V, cause: EvictionCause) => void) | undefined;
  readonly #policy: EvictionPolicy;
  readonly #reserved: number;
  readonly #slotLimit: number;
  readonly #map = new Map<string, number>();
  // Per slot; grown by setting length so they hold no spare capacity.
  readonly #keys: (string | undefined)[] = [];
  readonly #values: (V | undefined)[] = [];
  /** Per-slot accounted sizes, allocated only once held entries differ in size. */
  #sizes: Uint32Array | undefined = undefined;
  /** The size of every held entry while #sizes is not allocated. */
  #uniformSize = 0;
  #expiry: ExpiryHeap | undefined = undefined;
  #free: number[] = [];
  #nextFresh: number;
  #capacity: number;
  #bytes = 0;
  readonly #stats: MemoryTierStats = {
    hits: 0,
    misses: 0,
    sets: 0,
    deletes: 0,
    evictionsSize: 0,
    evictionsCount: 0,
    expirations: 0,
    rejections: 0,
  };
  #pending: PendingEviction<V>[] = [];

  /** @throws RangeError / TypeError naming the offending option. */
  constructor(options: MemoryTierOptions<V>) {
    const resolved = resolveOptions(options);
    this.#maxEntries = resolved.maxEntries;
    this.#maxBytes = resolved.maxBytes;
    this.#clock = resolved.clock;
    this.#sizeOf = resolved.sizeOf;
    this.#sizeOfKey = resolved.sizeOfKey;
    this.#overhead = resolved.entryOverheadBytes;
    this.#onEvict = resolved.onEvict;
    // Room for the policy's reserved slots (at most MAX_RESERVED_SLOTS) and one
    // extra entry: a new entry is stored before its victim is removed.
    const slotLimit = Math.min(2 ** 31 - 1, MAX_RESERVED_SLOTS + resolved.maxEntries + 1);
    this.#capacity = Math.min(slotLimit, INITIAL_SLOTS);
    const store: SlotStore = {
      sizeAt: (slot) => this.#sizeAt(slot),
      keyAt: (slot) => this.#keys[slot] as string,
    };
    this.#policy = createPolicy(resolved.policy, this.#capacity, resolved, store);
    this.#reserved = this.#policy.reservedSlots;
    this.#slotLimit = slotLimit;
    this.#nextFresh = this.#reserved;
    this.#keys.length = this.#capacity;
    this.#values.length = this.#capacity;
  }

  /** The eviction policy in use. */
  get policy(): EvictionPolicyName {
    return this.#policy.name;
  }

  /** The entry bound (Infinity if only bytes are bounded). */
  get maxEntries(): number {
    return this.#maxEntries;
  }

  /** The byte bound (Infinity if only entries are bounded). */
  get maxBytes(): number {
    return this.#maxBytes;
  }

  /** Entries held, including expired ones not yet reclaimed. */
  get size(): number {
    return this.#map.size;
  }

  /** Sum of sizeOf(value) + entryOverheadBytes over held entries (expired-but-unreclaimed included). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Live counters; the same object on every read. */
  get stats(): Readonly<MemoryTierStats> {
    return this.#stats;
  }

  /** Value if present and unexpired; counts a hit or miss and updates recency/frequency. */
  get(key: string): V | undefined {
    const slot = this.#hit(key);
    return slot === NO_SLOT ? undefined : this.#values[slot];
  }

  /** Like get, but also returns expiresAt (0 = never). */
  getEntry(key: string): { value: V; expiresAt: number } | undefined {
    const slot = this.#hit(key);
    return slot === NO_SLOT ? undefined : { value: this.#values[slot] as V, expiresAt: this.#expiresAt(slot) };
  }

  /** The live slot of `key` (counting a hit and telling the policy), or NO_SLOT (counting a miss, reclaiming an expired entry). */
  #hit(key: string): number {
    const slot = this.#map.get(key);
    if (slot === undefined) {
      this.#stats.misses++;
      return NO_SLOT;
    }
    if (this.#isExpired(slot)) {
      this.#evict(slot, "expired");
      this.#stats.misses++;
      this.#flush();
      return NO_SLOT;
    }
    this.#stats.hits++;
    this.#policy.onAccess(slot, key);
    return slot;
  }

  /** Value if present and unexpired; no stats, no recency update, never reclaims. */
  peek(key: string): V | undefined {
    const slot = this.#map.get(key);
    return slot === undefined || this.#isExpired(slot) ? undefined : this.#values[slot];
  }

  /** Expiry of an unexpired entry (0 = never), or undefined; no stats, no recency update, never reclaims. */
  peekExpiry(key: string): number | undefined {
    const slot = this.#map.get(key);
    return slot === undefined || this.#isExpired(slot) ? undefined : this.#expiresAt(slot);
  }

  /** Whether an unexpired entry exists; no stats, no recency update, never reclaims. */
  has(key: string): boolean {
    const slot = this.#map.get(key);
    return slot !== undefined && !this.#isExpired(slot);
  }

  /**
   * Store a value. `expiresAt` is absolute clock milliseconds, 0 = never.
   * Overwriting counts as a use for LRU/LFU/TinyLFU and re-queues for FIFO.
   *
   * Returns false when nothing is stored: the entry alone exceeds maxBytes
   * (or MAX_ENTRY_BYTES) or TinyLFU refused it (both count as rejections), or `expiresAt` is
   * already past (not counted). In every such case an existing value for
   * the key is removed, never left stale.
   * @throws RangeError if expiresAt is negative or not finite, or sizeOf returns one.
   */
  set(key: string, value: V, expiresAt = 0): boolean {
    checkExpiresAt(expiresAt);
    const size = this.#measure(key, value);
    const map = this.#map;
    let slot = map.get(key);
    let now = Number.NaN;
    const expiry = this.#expiry;
    if (slot !== undefined && expiry !== undefined) {
      const old = expiry.times[slot] as number;
      if (old !== 0) {
        now = this.#clock();
        if (old <= now) {
          this.#evict(slot, "expired");
          slot = undefined;
        }
      }
    }
    if (expiresAt !== 0) {
      if (Number.isNaN(now)) now = this.#clock();
      if (expiresAt <= now) return this.#refuse(slot, false);
    }
    if (size > this.#maxBytes || size > MAX_ENTRY_BYTES) return this.#refuse(slot, true);
    if (expiry !== undefined && expiry.size !== 0) {
      if (Number.isNaN(now)) now = this.#clock();
      for (let i = 0; i < EXPIRED_PURGE_PER_SET; i++) {
        const expired = expiry.expiredAt(now);
        if (expired === NO_SLOT) break;
        this.#evict(expired, "expired");
      }
    }

    if (slot !== undefined) {
      const oldSize = this.#sizeAt(slot);
      this.#storeSize(slot, size, map.size === 1);
      this.#bytes += size - oldSize;
      this.#values[slot] = value;
      if (expiresAt !== 0 || expiry !== undefined) this.#schedule(slot, expiresAt);
      this.#policy.onReplace(slot, key, oldSize);
    } else {
      slot = this.#allocate();
      this.#storeSize(slot, size, map.size === 0);
      map.set(key, slot);
      this.#keys[slot] = key;
      this.#values[slot] = value;
      this.#bytes += size;
      if (expiresAt !== 0) this.#schedule(slot, expiresAt);
      this.#policy.onInsert(slot, key);
    }

    if ((map.size > this.#maxEntries || this.#bytes > this.#maxBytes) && !this.#makeRoom(slot, now)) {
      return this.#refuse(slot, true);
    }
    this.#stats.sets++;
    this.#flush();
    return true;
  }

  /**
   * For a run of `set(keyAt(i), valueAt(i), expiresAtOf(i))`, i = 0 .. count-1
   * in order (an undefined value is no set): the first index whose set can
   * leave its entry in the tier. Under LRU and FIFO every set moves its key
   * to the back and eviction takes the front, so the tier always holds the
   * longest run of newest entries that fits; once `maxEntries` distinct
   * later keys are stored, an earlier set is evicted whatever else happens,
   * and doing it is wasted work (its key must only be deleted, so that no
   * older value stays). A later set counts only when it is sure to be
   * stored: within maxBytes and not expiring within
   * {@link SURVIVOR_EXPIRY_MARGIN_MS}. 0 for LFU and TinyLFU, which may keep
   * an older entry over a newer one.
   */
  firstSurvivor(count: number, keyAt: (i: number) => string, valueAt: (i: number) => V | undefined, expiresAtOf: (i: number) => number): number {
    const max = this.#maxEntries;
    if (count <= max || (this.#policy.name !== "lru" && this.#policy.name !== "fifo")) return 0;
    const soon = this.#clock() + SURVIVOR_EXPIRY_MARGIN_MS;
    const seen = new Set<string>(); // a key's last set decides its fate
    let stored = 0;
    for (let i = count - 1; i >= 0; i--) {
      const value = valueAt(i);
      if (value === undefined) continue;
      const key = keyAt(i);
      if (seen.has(key)) continue;
      seen.add(key);
      const expiresAt = expiresAtOf(i);
      if (expiresAt !== 0 && expiresAt <= soon) continue;
      const size = this.#measure(key, value);
      if (size > this.#maxBytes || size > MAX_ENTRY_BYTES) continue;
      if (++stored === max) return i;
    }
    return 0;
  }

  /** Remove an entry; true if an unexpired one was removed (an expired one is reclaimed as expired). */
  delete(key: string): boolean {
    const slot = this.#map.get(key);
    if (slot === undefined) return false;
    if (this.#isExpired(slot)) {
      this.#evict(slot, "expired");
      this.#flush();
      return false;
    }
    this.#remove(slot);
    this.#stats.deletes++;
    return true;
  }

  /**
   * Set a new expiresAt (absolute ms, 0 = never) on an unexpired entry,
   * without changing its recency; false if absent or expired.
   * @throws RangeError if expiresAt is negative or not finite.
   */
  touch(key: string, expiresAt: number): boolean {
    checkExpiresAt(expiresAt);
    const slot = this.#map.get(key);
    if (slot === undefined) return false;
    if (this.#isExpired(slot)) {
      this.#evict(slot, "expired");
      this.#flush();
      return false;
    }
    this.#schedule(slot, expiresAt);
    return true;
  }

  /**
   * Evicts one entry for room outside this tier (a budget shared with other
   * tiers): an expired entry first, else the policy's victim. Returns the
   * accounted bytes freed; 0 when the tier is empty.
   */
  evictOne(): number {
    if (this.#map.size === 0) return 0;
    let victim = NO_SLOT;
    let cause: EvictionCause = "expired";
    const expiry = this.#expiry;
    if (expiry !== undefined && expiry.size !== 0) victim = expiry.expiredAt(this.#clock());
    if (victim === NO_SLOT) {
      victim = this.#policy.victim(NO_SLOT);
      cause = "size";
    }
    if (victim === NO_SLOT) return 0;
    const size = this.#sizeAt(victim);
    this.#evict(victim, cause);
    this.#flush();
    return size;
  }

  /** Remove every entry (no onEvict); stats are kept. */
  clear(): void {
    this.#map.clear();
    this.#keys.fill(undefined, 0, this.#nextFresh);
    this.#values.fill(undefined, 0, this.#nextFresh);
    this.#free = [];
    this.#nextFresh = this.#reserved;
    this.#bytes = 0;
    this.#policy.clear();
    this.#expiry?.clear();
  }

  /**
   * Reclaim up to `limit` expired entries, earliest expiry first, visiting
   * only expired ones (O(k log n)); returns how many were reclaimed.
   * @param limit non-negative integer; default: all that are expired
   */
  purgeExpired(limit = Infinity): number {
    if (limit !== Infinity && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new RangeError(`MemoryTier: limit must be a non-negative integer, got ${String(limit)}`);
    }
    const expiry = this.#expiry;
    if (expiry === undefined || expiry.size === 0) return 0;
    const now = this.#clock();
    let purged = 0;
    while (purged < limit) {
      const slot = expiry.expiredAt(now);
      if (slot === NO_SLOT) break;
      this.#evict(slot, "expired");
      purged++;
    }
    this.#flush();
    return purged;
  }

  /** Unexpired keys, in no particular order (for tests and debugging). */
  *keys(): IterableIterator<string> {
    const expiry = this.#expiry;
    const now = expiry === undefined ? 0 : this.#clock();
    for (const [key, slot] of this.#map) {
      if (expiry !== undefined) {
        const time = expiry.times[slot] as number;
        if (time !== 0 && time <= now) continue;
      }
      yield key;
    }
  }

  #isExpired(slot: number): boolean {
    const expiry = this.#expiry;
    if (expiry === undefined) return false;
    const time = expiry.times[slot] as number;
    return time !== 0 && time <= this.#clock();
  }

  #expiresAt(slot: number): number {
    return this.#expiry === undefined ? 0 : (this.#expiry.times[slot] as number);
  }

  #schedule(slot: number, expiresAt: number): void {
    if (expiresAt === 0) {
      this.#expiry?.remove(slot);
      return;
    }
    this.#expiry ??= new ExpiryHeap(this.#capacity);
    this.#expiry.set(slot, expiresAt);
  }

  /** Accounted size: sizeOf (plus sizeOfKey) rounded up to whole bytes, plus the overhead. */
  #measure(key: string, value: V): number {
    const bytes = this.#sizeOfKey === undefined ? this.#sizeOf(value) : this.#sizeOf(value) + this.#sizeOfKey(key);
    if (typeof bytes !== "number" || !Number.isFinite(bytes) || bytes < 0) {
      throw new RangeError(`MemoryTier: sizeOf must return a finite number >= 0, got ${String(bytes)}`);
    }
    return Math.ceil(bytes) + this.#overhead;
  }

  #sizeAt(slot: number): number {
    return this.#sizes === undefined ? this.#uniformSize : (this.#sizes[slot] as number);
  }

  /** Record `size` for `slot`; `alone` if no other entry is held. */
  #storeSize(slot: number, size: number, alone: boolean): void {
    let sizes = this.#sizes;
    if (sizes === undefined) {
      if (size === this.#uniformSize) return;
      if (alone) {
        this.#uniformSize = size;
        return;
      }
      sizes = this.#sizes = new Uint32Array(this.#capacity).fill(this.#uniformSize);
    }
    sizes[slot] = size;
  }

  /** Evict until both bounds hold, expired entries first; false if `pinned` itself must go (the caller removes it). */
  #makeRoom(pinned: number, now: number): boolean {
    const map = this.#map;
    while (map.size > this.#maxEntries || this.#bytes > this.#maxBytes) {
      let victim = NO_SLOT;
      let cause: EvictionCause = "expired";
      const expiry = this.#expiry;
      if (expiry !== undefined && expiry.size !== 0) {
        if (Number.isNaN(now)) now = this.#clock();
        victim = expiry.expiredAt(now);
      }
      if (victim === NO_SLOT) {
        victim = this.#policy.victim(pinned);
        cause = map.size > this.#maxEntries ? "count" : "size";
        if (victim === pinned || victim === NO_SLOT) return false;
      }
      this.#evict(victim, cause);
    }
    return true;
  }

  /** Remove `slot` (if any) without notification, count a rejection if asked, return false. */
  #refuse(slot: number | undefined, rejection: boolean): false {
    if (slot !== undefined) this.#remove(slot);
    if (rejection) this.#stats.rejections++;
    this.#flush();
    return false;
  }

  #allocate(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    const slot = this.#nextFresh++;
    if (slot >= this.#capacity) this.#grow(slot + 1);
    return slot;
  }

  #grow(needed: number): void {
    const capacity = Math.min(this.#slotLimit, Math.max(needed, this.#capacity * 2));
    this.#keys.length = capacity;
    this.#values.length = capacity;
    if (this.#sizes !== undefined) {
      const sizes = new Uint32Array(capacity);
      sizes.set(this.#sizes);
      this.#sizes = sizes;
    }
    this.#expiry?.resize(capacity);
    this.#policy.resize(capacity);
    this.#capacity = capacity;
  }

  /** Take `slot` out of every structure; no stats, no notification. */
  #remove(slot: number): void {
    this.#policy.onRemove(slot);
    this.#expiry?.remove(slot);
    this.#map.delete(this.#keys[slot] as string);
    this.#bytes -= this.#sizeAt(slot);
    this.#keys[slot] = undefined;
    this.#values[slot] = undefined;
    this.#free.push(slot);
  }

  /** Remove `slot` for `cause`, count it and queue the onEvict notification. */
  #evict(slot: number, cause: EvictionCause): void {
    const key = this.#keys[slot] as string;
    const value = this.#values[slot] as V;
    this.#remove(slot);
    if (cause === "expired") this.#stats.expirations++;
    else if (cause === "size") this.#stats.evictionsSize++;
    else this.#stats.evictionsCount++;
    if (this.#onEvict !== undefined) this.#pending.push({ key, value, cause });
  }

  /** Deliver queued onEvict notifications once the tier is consistent. */
  #flush(): void {
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    const onEvict = this.#onEvict as (key: string, value: V, cause: EvictionCause) => void;
    for (const { key, value, cause } of batch) onEvict(key, value, cause);
  }
}
