import { callEnded, cancelled } from "./scope-cancel.js";
import { systemClock, type Clock } from "../../core/clock.js";
import type { ValueCodec } from "../../core/codec.js";
import { CONTENT_TYPE_LENGTH_OFFSET, decodedLength, freshness, freshnessAt, isFresh, isTagged, readExpiresAt, readTagSection, withNewExpiry, type TagStamp } from "../../core/envelope.js";
import { InvalidArgumentError, LeaseLostError, TierUnavailableError, ValueTooLargeError } from "../../core/errors.js";
import { MemoryTier, type EvictionPolicyName } from "../../core/memory-tier.js";
import { distinctTags, MAX_TAGS_PER_ENTRY, MAX_TAGS_PER_INVALIDATION, tagsProblem } from "../../core/tag-rules.js";
import { jitteredTtl } from "../../core/ttl-jitter.js";
import type { CallScope, DurableFootprint, DurableTier, DurableWrite, LeaseAttempt, LeaseRequestFailed, ReadAndLease, SharedLeases, Tenant, TierName } from "./durable-tier.js";
import { ARCHIVED_COUNTERS_BYTES, CounterArchive, NamespaceCounters, type DurableCounters, snapshotNamespace, type NamespaceStatsSnapshot } from "./namespace-stats.js";
import { DEFAULT_MAX_RETAINED_BYTES, InvalidationBus, type Change, type WriteOrigin } from "./invalidation-bus.js";
import { LeaseGiveBacks } from "./lease-give-backs.js";
import { LeaseTable } from "./lease-table.js";
import { MemoryBudget } from "./memory-budget.js";
import { retainable, withOwnedEnvelopes } from "./owned-envelopes.js";
import { SingleFlight } from "./single-flight.js";
import { TagTable } from "./tag-table.js";
import { checkBatch, checkKey, checkNamespace, checkTtl } from "./validation.js";

/** Settings that apply to each namespace. */
export interface NamespaceSettings {
  /** TTL applied when a write gives 0, in ms; 0 = no expiry. */
  defaultTtlMs: number;
  /** Each TTL is shortened by a random fraction up to this (0..1), never lengthened. */
  ttlJitter: number;
  /** Memory tier bound: entries. */
  memoryMaxEntries: number;
  /** Memory tier bound: bytes (envelopes plus per-entry overhead). */
  memoryMaxBytes: number;
  /** Memory tier eviction policy. */
  policy: EvictionPolicyName;
}

/** Resolved options of a {@link CacheEngine}. */
export interface CacheEngineOptions {
  /** Settings per namespace; called once per namespace, on first use. */
  settingsFor: (namespace: string) => NamespaceSettings;
  /** The tier below memory, if any. */
  durable: DurableTier | undefined;
  codec: ValueCodec;
  maxKeyBytes: number;
  maxBatch: number;
  /** Most namespaces holding data at once; a write to a new one past it is refused (empty ones are reclaimed first). */
  maxNamespaces: number;
  /**
   * One bound on what the memory tiers of all namespaces hold together
   * (values, keys, per-entry and per-namespace overhead, leases), in bytes;
   * past it the largest namespace evicts first. @default Infinity
   */
  maxMemoryBytes?: number;
  /** Most leases held at once; past it GetOrLease grants none (callers compute without one). @default 100000 */
  maxLeases?: number;
  /** Bound of the Watch history kept for resuming watchers, in estimated bytes; counted in the memory budget, and at most a quarter of it. @default 32 MiB */
  watchHistoryBytes?: number;
  clock?: Clock;
  /** Random numbers in [0, 1) for TTL jitter. @default Math.random */
  random?: () => number;
  /** Called after every change this engine made (to share it with other instances). */
  onChange?: (change: Change) => void;
  /**
   * When the durable tier is unavailable, store writes in the memory tier only
   * and report them degraded, instead of failing them. Deletes, touches and
   * clears still fail (a memory-only delete would let the old value return).
   * @default false
   */
  degradedWrites?: boolean;
}

/** What a write did. */
export interface WriteOutcome {
  stored: number;
  /** Stored in the memory tier only (the durable tier was unavailable). */
  degraded: boolean;
  /** A single entry's TTL as stored, in ms: after the namespace's default and TTL jitter, grace not counted; 0 = no expiry. */
  ttlMs: number;
}

/** What a read of one key found, and in which tier. */
interface Read {
  envelope: Uint8Array;
  tier: TierName;
}

/** What one try for a lease got: the token; or not, with the ms another instance's holder has left (0: a fresh value was written), when one does. */
interface LeaseTry {
  token: string | undefined;
  heldElsewhereMs?: number;
  /** An eager refresh found a value newer than the caller's copy. */
  newerValue?: true;
}

/** A value the engine found. */
export interface FoundValue {
  key: string;
  value: Uint8Array;
  contentType: string;
  /** ms until expiry (the end of grace when stale); 0 = never. */
  ttlRemainingMs: number;
  tier: TierName;
  /** Past its TTL, within its grace period. */
  stale: boolean;
  /** ms until it goes stale (0 once stale); equals ttlRemainingMs without grace. */
  freshRemainingMs: number;
  /** Absolute expiry as stored, in ms since the epoch (0 = never): which write this is, for eager refresh. */
  expiresAt: number;
}

/**
 * A value the engine found, as a response writer copies it: its value is
 * `bytes` from `valueStart` to the end, the tail of the stored envelope
 * itself or, for a compressed value, its decompressed bytes (read-only either way).
 */
export interface FoundInPlace {
  readonly key: string;
  readonly bytes: Uint8Array;
  readonly valueStart: number;
  /** The content type's UTF-8 (read-only). */
  readonly contentTypeBytes: Uint8Array;
  /** As {@link FoundValue.ttlRemainingMs}. */
  readonly ttlRemainingMs: number;
  readonly tier: TierName;
  readonly stale: boolean;
  /** As {@link FoundValue.freshRemainingMs}. */
  readonly freshRemainingMs: number;
}

/** ms until a value found at `now` expires (0 = never), at least 1 when it expires at all. */
function ttlRemainingAt(expiresAt: number, now: number): number {
  return expiresAt === 0 ? 0 : Math.max(1, expiresAt - now);
}

/** ms until a value found at `now` goes stale: its TTL without grace (`freshUntil` 0), 0 once stale, at least 1 before. */
function freshRemainingAt(freshUntil: number, stale: boolean, ttlRemainingMs: number, now: number): number {
  return freshUntil === 0 ? ttlRemainingMs : stale ? 0 : Math.max(1, freshUntil - now);
}

/** What {@link CacheEngine.getNow} returns when the answer needs the durable tier or a tag check. */
export const NEEDS_ASYNC: unique symbol = Symbol("needs async");

/** A fresh value found by {@link CacheEngine.lookupMany}, not yet decoded. */
export interface Hit {
  readonly key: string;
  readonly envelope: Uint8Array;
  readonly tier: TierName;
  /** Bytes it takes in a response: its decoded length (from the header), key, content type and field framing. */
  readonly responseBytes: number;
}

/** Framing of one entry in a response (tags, lengths, TTLs, tier), generously. */
const ENTRY_FRAMING_BYTES = 48;

/** The bytes an envelope's entry takes in a response, from its header alone. */
function responseBytesOf(key: string, envelope: Uint8Array): number {
  return decodedLength(envelope) + Buffer.byteLength(key, "utf8") + envelope[CONTENT_TYPE_LENGTH_OFFSET]! + ENTRY_FRAMING_BYTES;
}

/** The response bytes of `hits` (from their headers); throws ValueTooLargeError when over `limit`, before any decoding. */
export function checkResponseSize(hits: readonly Hit[], limit: number): number {
  let bytes = 0;
  for (const hit of hits) bytes += hit.responseBytes;
  if (bytes > limit) {
    throw new ValueTooLargeError(
      `the ${hits.length} values found would make a response of about ${bytes} bytes, over max-message-bytes (${limit}): ask for fewer keys, or use StreamGet`,
    );
  }
  return bytes;
}

/** What GetOrLease found: a value, a lease, both (stale value), or neither. */
export interface LeaseResult {
  found: FoundValue | undefined;
  /** Set when the caller holds the lease and should compute the value. */
  leaseToken: string | undefined;
}

/** A value to write. */
export interface ValueToSet {
  key: string;
  value: Uint8Array;
  contentType: string;
  /** ms; 0 = the namespace default. */
  ttlMs: number;
  /** ms kept after the TTL, served as stale; 0 = none. */
  graceMs?: number;
  /** The lease (from getOrLease) this write fulfils. */
  leaseToken?: string;
  /** Tags (at most 16, each 1 to 128 UTF-8 bytes) that InvalidateTags can hide it by. */
  tags?: readonly string[];
  /** Who writes it; tags the change's Watch event when it is the only entry and reaches every tier. */
  origin?: WriteOrigin;
}

/** Bytes of one namespace's state besides its entries (maps, counters, the memory tier's first slot arrays); measured on Node 20. */
export const NAMESPACE_OVERHEAD_BYTES = 16 * 1024;
/**
 * Shares of the memory budget that what no eviction can free may take at
 * most, so that it never crowds out the cache: the Watch history, leases,
 * archived counters (namespace state is bounded by max-namespaces, checked
 * against the budget at start-up).
 */
const MAX_HISTORY_SHARE = 0.25;
const MAX_LEASES_SHARE = 0.1;
const MAX_ARCHIVE_SHARE = 0.05;
/** Bytes of one held lease (map entry, key, token, record). */
const LEASE_OVERHEAD_BYTES = 256;
/** Most tag epochs one namespace remembers (each counted in the memory budget). */
const MAX_TAGS_PER_NAMESPACE = 10_000;
/** The keys a change names: none for "tags" (its `keys` are tags). */
function changedKeys(change: Change): readonly string[] {
  return change.kind === "tags" ? [] : change.keys;
}
/** Bytes per entry besides its envelope and key, measured on Node 20 x64: map entry, slots, policy links, and the envelope's own Uint8Array, ArrayBuffer and backing-store allocation. */
const ENTRY_OVERHEAD_BYTES = 600;

class NamespaceState {
  readonly memory: MemoryTier<Uint8Array>;
  /** Invalidation epochs of its tags (a cache over the durable tier, or the truth without one). */
  readonly tags: TagTable;
  /** Durable reads in flight, per key: concurrent misses share one. */
  readonly loads = new SingleFlight<Uint8Array | undefined>();
  readonly durable: DurableCounters;
  readonly written: NamespaceCounters["written"];
  /** Changes in flight: the state cannot be reclaimed while they run. */
  pending = 0;
  /** Local changes in flight per key, and the keys among them that another change (local or remote) overlapped (see CacheEngine#commit). */
  readonly changing = new Map<string, number>();
  readonly overtaken = new Set<string>();
  /** Bumped by every clear or resync from elsewhere: local changes in flight then were overtaken too. */
  remoteClears = 0;
  /** The token quota whose write started this namespace, which its bytes count against. */
  owner: TenantState | undefined;
  constructor(
    readonly name: string,
    readonly settings: NamespaceSettings,
    clock: Clock,
    /** False for a state made for one call past max-namespaces: it keeps nothing in memory. */
    readonly registered: boolean,
    readonly counters: NamespaceCounters,
    hasDurable: boolean,
  ) {
    this.tags = new TagTable(MAX_TAGS_PER_NAMESPACE, !hasDurable);
    this.durable = counters.durable;
    this.written = counters.written;
    this.memory = new MemoryTier<Uint8Array>({
      maxEntries: settings.memoryMaxEntries,
      maxBytes: settings.memoryMaxBytes,
      policy: settings.policy,
      clock,
      entryOverheadBytes: ENTRY_OVERHEAD_BYTES,
      sizeOfKey: (key) => 2 * key.length,
    });
  }

  /** Holds nothing and has nothing in flight. */
  get idle(): boolean {
    return this.memory.size === 0 && this.loads.size === 0 && this.pending === 0;
  }
}

/** What one token's quota holds now: the namespaces its writes started, and their bytes within its own budget. */
class TenantState {
  readonly namespaces = new Set<string>();
  readonly budget: MemoryBudget;
  constructor(
    readonly tenant: Tenant,
    stateOf: (namespace: string) => NamespaceState | undefined,
  ) {
    this.budget = new MemoryBudget(tenant.maxBytes, {
      tiers: () => Array.from(this.namespaces, (namespace) => stateOf(namespace)?.memory).filter((tier) => tier !== undefined),
      fixedBytes: () => this.namespaces.size * NAMESPACE_OVERHEAD_BYTES,
    });
  }
}

/** The memory tier of a namespace that holds nothing, for its Stats. */
const EMPTY_TIER = new MemoryTier<Uint8Array>({ maxEntries: 1 });

/**
 * The cache engine: namespaces, each a chain of a bounded memory tier over an
 * optional durable tier. Reads fall through and promote what they find with
 * its remaining TTL; writes reach every tier and resolve only when all
 * accepted. Concurrent misses of one key share one durable read.
 */
export class CacheEngine {
  readonly #options: CacheEngineOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #namespaces = new Map<string, NamespaceState>();
  readonly #leases: LeaseTable;
  /** Give-backs of shared leases nobody will use (undefined without shared leases). */
  readonly #giveBacks: LeaseGiveBacks | undefined;
  readonly #maxLeases: number;
  /** Token quotas in use, by tenant id. */
  readonly #tenants = new Map<string, TenantState>();
  /** Counters of namespaces whose state was forgotten (bounded: at most 10,000 records, and 5 % of the memory budget). */
  readonly #archive: CounterArchive;
  /** When the last scan for expired-only namespaces ran (they are reclaimed at most once a second when at max-namespaces). */
  #lastReclaimScan = -Infinity;
  /** The server-wide memory bound; undefined when unbounded. */
  readonly budget: MemoryBudget | undefined;
  /** Numbers and delivers the changes of each namespace to watchers. */
  readonly bus: InvalidationBus;

  constructor(options: CacheEngineOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#leases = new LeaseTable(this.#clock);
    const shared = options.durable?.leases;
    this.#giveBacks =
      shared &&
      new LeaseGiveBacks(
        (namespace, key, token) => shared.release(namespace, key, token),
        // Wakes the callers other instances hold waiting for this lease (see #releaseLease).
        (namespace, key) => this.#options.onChange?.({ kind: "touch", namespace, keys: [key] }),
      );
    const maxMemory = options.maxMemoryBytes ?? Infinity;
    this.#archive = new CounterArchive(Math.max(1, Math.min(10_000, Math.floor((maxMemory * MAX_ARCHIVE_SHARE) / ARCHIVED_COUNTERS_BYTES))));
    this.#maxLeases = Math.min(options.maxLeases ?? 100_000, Math.max(1, Math.floor((maxMemory * MAX_LEASES_SHARE) / LEASE_OVERHEAD_BYTES)));
    const historyBytes = Math.min(options.watchHistoryBytes ?? DEFAULT_MAX_RETAINED_BYTES, Math.floor(maxMemory * MAX_HISTORY_SHARE));
    this.bus = new InvalidationBus({ maxRetainedBytes: historyBytes });
    this.budget =
      maxMemory === Infinity
        ? undefined
        : new MemoryBudget(maxMemory, {
            tiers: () => Array.from(this.#namespaces.values(), (state) => [state.memory, state.tags]).flat(),
            fixedBytes: () =>
              this.#namespaces.size * NAMESPACE_OVERHEAD_BYTES +
              this.#leases.size * LEASE_OVERHEAD_BYTES +
              this.#archive.size * ARCHIVED_COUNTERS_BYTES +
              this.bus.retainedBytes,
          });
  }

  /** Keeps `envelope` in the namespace's memory tier, within the server's budget. */
  #keep(state: NamespaceState, key: string, envelope: Uint8Array, expiresAt: number): void {
    const kept = retainable(envelope);
    if (state.registered && state.memory.set(key, kept, expiresAt)) {
      const bytes = kept.byteLength + 2 * key.length + ENTRY_OVERHEAD_BYTES;
      this.budget?.added(bytes);
      state.owner?.budget.added(bytes);
    }
  }

  #changed(change: Change): void {
    this.#publish(change);
    this.#options.onChange?.(change);
  }

  /** Hands a change to this instance's watchers; what its history grows by counts in the memory budget. */
  #publish(change: Change): void {
    const before = this.bus.retainedBytes;
    this.bus.publish(change);
    const grown = this.bus.retainedBytes - before;
    if (grown > 0) this.budget?.added(grown);
  }

  /**
   * Applies a change made by another server instance: drops the memory
   * tier's copies and tells this instance's watchers.
   */
  applyRemoteChange(change: Change): void {
    if (change.kind === "clear") this.#leases.notifyNamespace(change.namespace);
    else for (const key of change.keys) this.#leases.notifyWritten(change.namespace, key);
    const state = this.#namespaces.get(change.namespace);
    if (state) {
      this.#drop(state, change);
      if (change.kind === "clear") state.remoteClears++;
      else for (const key of changedKeys(change)) if (state.changing.has(key)) state.overtaken.add(key);
    }
    this.#publish(change);
  }

  /** Drops every memory-tier copy and resets every watcher (changes from other instances may have been missed). */
  forgetRemoteState(): void {
    for (const state of this.#namespaces.values()) {
      this.#drop(state, { kind: "clear", namespace: state.name, keys: [] });
      if (this.#options.durable) state.tags.forget();
      state.remoteClears++;
    }
    this.bus.resetAll();
  }

  /** Forgets the memory copies and in-flight loads a change makes stale. */
  #drop(state: NamespaceState, change: Change): void {
    this.#forgetLoads(state, change);
    if (change.kind === "clear") state.memory.clear();
    else if (change.kind === "tags") {
      if (this.#options.durable) state.tags.forget(change.keys);
    } else for (const key of change.keys) state.memory.delete(key);
  }

  /** Detaches in-flight durable reads of the change's keys (all of them for a clear): they will not be promoted. */
  #forgetLoads(state: NamespaceState, change: Change): void {
    if (change.kind === "clear") state.loads.forgetAll();
    else for (const key of changedKeys(change)) state.loads.forget(key);
  }

  /**
   * The one path of every change: in-flight reads of the keys are detached
   * before and after the durable part (so none that overlapped it promotes
   * an older value), then memory is updated, lease waiters woken, the change
   * published and counted. When the durable part fails, its outcome is
   * uncertain (a timed-out write may still be applied): the keys are dropped
   * from memory and the change is published all the same, so that no
   * instance or client keeps a copy that may no longer be the durable one.
   */
  async #commit<T>(state: NamespaceState, change: Change, durablePart: () => Promise<T>, applyToMemory: (result: T) => void): Promise<T> {
    this.#forgetLoads(state, change);
    state.pending++;
    const named = changedKeys(change);
    const keys = named.length === 1 ? named : [...new Set(named)];
    for (const key of keys) {
      const inFlight = state.changing.get(key) ?? 0;
      // Two local changes to one key in flight: a durable tier may apply them in either order, so neither is kept.
      if (inFlight > 0 && this.#options.durable) state.overtaken.add(key);
      state.changing.set(key, inFlight + 1);
    }
    const clears = state.remoteClears;
    let result: T;
    try {
      result = await durablePart();
    } catch (err) {
      // Not tagged with its writer: an uncertain write must reach its writer too.
      const untagged: Change = { kind: change.kind, namespace: change.namespace, keys: change.keys };
      this.#endChange(state, change, clears);
      this.#drop(state, untagged);
      this.#settleChange(state, untagged);
      throw err;
    }
    this.#forgetLoads(state, change);
    const overtaken = this.#endChange(state, change, clears);
    applyToMemory(result);
    // Another change to these keys (from another instance, or another local one) overlapped ours:
    // which the durable tier applied last is unknown here, so memory keeps none and the next read asks it.
    if (overtaken === "all") this.#drop(state, change);
    else if (overtaken.length > 0) this.#drop(state, { ...change, keys: overtaken });
    // An overtaken write is not tagged with its writer: which value the durable tier kept is unknown.
    const settled = overtaken === "all" || overtaken.length > 0 ? { kind: change.kind, namespace: change.namespace, keys: change.keys } : change;
    this.#settleChange(state, settled);
    return result;
  }

  /** Ends a change's bookkeeping; the keys another instance's change overtook meanwhile ("all" after a clear or resync). */
  #endChange(state: NamespaceState, change: Change, clears: number): readonly string[] | "all" {
    state.pending--;
    const overtaken: string[] = [];
    const named = changedKeys(change);
    for (const key of named.length === 1 ? named : new Set(named)) {
      if (state.overtaken.has(key)) overtaken.push(key);
      const left = state.changing.get(key)! - 1;
      if (left > 0) state.changing.set(key, left);
      else {
        state.changing.delete(key);
        state.overtaken.delete(key);
      }
    }
    return state.remoteClears !== clears ? "all" : overtaken;
  }

  /** The end of every change: wakes lease waiters and publishes. */
  #settleChange(state: NamespaceState, change: Change): void {
    const held = this.#namespaces.get(state.name);
    if (held !== undefined && held !== state) this.#drop(held, change); // made through a state of its own, past max-namespaces
    for (const key of changedKeys(change)) this.#leases.notifyWritten(state.name, key);
    this.#changed(change);
  }

  /** After every call: a namespace that holds nothing and has nothing in flight is forgotten (its counters go with it). */
  #release(state: NamespaceState): void {
    if (!state.registered) this.#archive.add(state.name, state.counters.withMemory(state.memory.stats));
    else if (state.idle && this.#namespaces.get(state.name) === state) this.#forget(state);
  }

  /** Drops a namespace's state, keeping its counters in the archive. */
  #forget(state: NamespaceState): void {
    this.#namespaces.delete(state.name);
    const owner = state.owner;
    if (owner) {
      owner.namespaces.delete(state.name);
      if (owner.namespaces.size === 0) this.#tenants.delete(owner.tenant.id);
    }
    this.#archive.retire(state.name, state.counters.withMemory(state.memory.stats));
  }

  /** Forgets every namespace that holds nothing (expired entries reclaimed first); how many went. */
  reclaimIdleNamespaces(): number {
    let reclaimed = 0;
    for (const state of [...this.#namespaces.values()]) {
      state.memory.purgeExpired();
      if (state.idle) {
        this.#forget(state);
        reclaimed++;
      }
    }
    return reclaimed;
  }

  /** Namespaces holding state now. */
  get namespaceCount(): number {
    return this.#namespaces.size;
  }

  /** What the durable tier holds, when it can tell cheaply (see {@link DurableTier.footprint}); undefined otherwise. */
  durableFootprint(): DurableFootprint | undefined {
    return this.#options.durable?.footprint?.();
  }

  /** The durable tier's name, or undefined when the engine is memory only. */
  get durableTier(): TierName | undefined {
    return this.#options.durable?.name;
  }

  /**
   * The state of a namespace for one call: held, or created. Past
   * max-namespaces (namespaces holding data, or with calls in flight), a
   * write is refused; any other call gets a state of its own that keeps
   * nothing in memory, so reads are never refused. Every call ends with
   * {@link #release}.
   */
  #namespace(name: string, intent: "write" | "other" = "other", tenant?: Tenant): NamespaceState {
    const ns = checkNamespace(name);
    const held = this.#namespaces.get(ns);
    if (held) return held;
    if (this.#namespaces.size >= this.#options.maxNamespaces && this.#reclaimExpiredOnly() === 0) {
      if (intent === "write") {
        throw new ValueTooLargeError(`namespace ${JSON.stringify(ns)} would exceed max-namespaces (${this.#options.maxNamespaces} namespaces holding data)`);
      }
      return new NamespaceState(ns, this.#options.settingsFor(ns), this.#clock, false, new NamespaceCounters(), this.#options.durable !== undefined);
    }
    const owner = intent === "write" && tenant !== undefined ? this.#tenantState(tenant) : undefined;
    if (owner && owner.namespaces.size >= tenant!.maxNamespaces) {
      throw new ValueTooLargeError(`namespace ${JSON.stringify(ns)} would exceed the quota of ${tenant!.id}: ${tenant!.maxNamespaces} namespaces holding data`);
    }
    const created = new NamespaceState(ns, this.#options.settingsFor(ns), this.#clock, true, this.#archive.take(ns), this.#options.durable !== undefined);
    this.#namespaces.set(ns, created);
    if (owner) {
      created.owner = owner;
      owner.namespaces.add(ns);
    }
    this.budget?.added(NAMESPACE_OVERHEAD_BYTES);
    return created;
  }

  /** The quota state of a token, made on its first write. */
  #tenantState(tenant: Tenant): TenantState {
    let state = this.#tenants.get(tenant.id);
    if (!state) this.#tenants.set(tenant.id, (state = new TenantState(tenant, (namespace) => this.#namespaces.get(namespace))));
    return state;
  }

  /** Runs one call on the namespace's state, and releases the state however the call ends. */
  #inNamespace<T>(name: string, intent: "write" | "other", call: (state: NamespaceState) => Promise<T>, tenant?: Tenant): Promise<T> {
    // Callbacks rather than an async function: one promise fewer on every call, a read that misses memory included.
    let state: NamespaceState;
    let running: Promise<T>;
    try {
      state = this.#namespace(name, intent, tenant);
    } catch (err) {
      return Promise.reject(err);
    }
    try {
      running = Promise.resolve(call(state));
    } catch (err) {
      this.#release(state);
      return Promise.reject(err);
    }
    return running.then(
      (value) => (this.#release(state), value),
      (err: unknown) => {
        this.#release(state);
        throw err;
      },
    );
  }

  /** At max-namespaces: forgets namespaces that hold only expired entries (one scan a second at most). */
  #reclaimExpiredOnly(): number {
    const now = this.#clock();
    if (now - this.#lastReclaimScan < 1000) return 0;
    this.#lastReclaimScan = now;
    return this.reclaimIdleNamespaces();
  }

  /**
   * What a read returns for an envelope: nothing when it is gone, or stale
   * and the caller wants fresh values only (checked on the header, before
   * any decompression).
   */
  #visible(key: string, envelope: Uint8Array, tier: TierName, acceptStale: boolean, now = this.#clock()): FoundValue | undefined {
    const state = freshness(envelope, now);
    if (state === "gone" || (state === "stale" && !acceptStale)) return undefined;
    const decoded = this.#options.codec.decode(envelope);
    const ttlRemainingMs = ttlRemainingAt(decoded.expiresAt, now);
    const stale = state === "stale";
    const freshRemainingMs = freshRemainingAt(decoded.freshUntil, stale, ttlRemainingMs, now);
    return { key, value: decoded.value, contentType: decoded.contentType, ttlRemainingMs, tier, stale, freshRemainingMs, expiresAt: decoded.expiresAt };
  }

  /** Absolute expiry of a write, the end of its fresh period when it has grace (0 = none), and its TTL after jitter (0 = none). */
  #expiry(state: NamespaceState, ttlMs: number, graceMs = 0): { expiresAt: number; freshUntil: number; ttl: number } {
    checkTtl(ttlMs);
    checkTtl(graceMs, "grace_ms");
    const ttl = ttlMs === 0 ? state.settings.defaultTtlMs : ttlMs;
    if (ttl === 0) return { expiresAt: 0, freshUntil: 0, ttl: 0 };
    const jitter = state.settings.ttlJitter;
    const shortened = jitter === 0 ? ttl : jitteredTtl(ttl, jitter, this.#random());
    const freshUntil = this.#clock() + shortened;
    return graceMs === 0 ? { expiresAt: freshUntil, freshUntil: 0, ttl: shortened } : { expiresAt: freshUntil + graceMs, freshUntil, ttl: shortened };
  }

  /**
   * Reads `key` through the durable tier (joining a read already in flight)
   * and promotes a live hit, unless a change to the key came meanwhile.
   */
  #readThrough(state: NamespaceState, key: string, waiter: CallScope | undefined, fetch: (scope: CallScope) => Promise<Uint8Array | undefined>): Promise<Uint8Array | undefined> {
    return state.loads.run(key, waiter, (isCurrent, scope) =>
      Promise.resolve(fetch(scope)).then((envelope) => {
        const now = this.#clock();
        if (envelope === undefined || freshness(envelope, now) === "gone") {
          state.durable.misses++;
          return undefined;
        }
        state.durable.hits++;
        if (isCurrent()) this.#keep(state, key, envelope, readExpiresAt(envelope));
        return envelope;
      }),
    );
  }

  /** {@link #readThrough} of several keys, none of them loading now, in one load (`fetch` gives one envelope per key, in order). */
  #readThroughMany(
    state: NamespaceState,
    keys: readonly string[],
    waiter: CallScope | undefined,
    fetch: (scope: CallScope) => Promise<(Uint8Array | undefined)[]>,
  ): Promise<(Uint8Array | undefined)[]> {
    return state.loads.runMany(keys, waiter, async (isCurrent, scope) => {
      const envelopes = await fetch(scope);
      const now = this.#clock();
      for (let i = 0; i < keys.length; i++) {
        const envelope = envelopes[i];
        if (envelope === undefined || freshness(envelope, now) === "gone") {
          state.durable.misses++;
          envelopes[i] = undefined;
          continue;
        }
        state.durable.hits++;
      }
      // More hits than the memory tier holds: those it would evict at once are not copied in.
      const promoted = (i: number) => (envelopes[i] !== undefined && isCurrent(i) ? envelopes[i] : undefined);
      const from = state.memory.firstSurvivor(keys.length, (i) => keys[i]!, promoted, (i) => readExpiresAt(envelopes[i]!));
      for (let i = from; i < keys.length; i++) {
        const envelope = promoted(i);
        if (envelope !== undefined) this.#keep(state, keys[i]!, envelope, readExpiresAt(envelope));
      }
      return envelopes;
    });
  }

  /** The envelope of `key` from memory, or else read through the durable tier; undefined when neither has it, or an invalidation of its tags hides it. */
  #read(state: NamespaceState, key: string, scope: CallScope | undefined): Promise<Read | undefined> {
    const cached = state.memory.get(key);
    const durable = this.#options.durable;
    if (cached === undefined && durable) return this.#readDurable(state, key, scope, durable);
    return this.#readHeld(state, key, scope, cached);
  }

  /** {@link #read} when the memory tier holds the key (or there is no durable tier). */
  async #readHeld(state: NamespaceState, key: string, scope: CallScope | undefined, cached: Uint8Array | undefined): Promise<Read | undefined> {
    if (cached !== undefined) {
      if (!isTagged(cached) || !(await this.#hidden(state, [cached], scope))[0]) return { envelope: cached, tier: "memory" };
      // Without a durable tier a hidden copy stays (Delete still counts it) until it goes. With one, it is dropped and the
      // durable tier, which holds the truth, is read: it may hold a newer value whose change event has not arrived yet.
      if (!this.#options.durable) return undefined;
      if (state.memory.peek(key) === cached) state.memory.delete(key);
    }
    const durable = this.#options.durable;
    if (!durable) return undefined;
    return this.#readDurable(state, key, scope, durable);
  }

  /** {@link #read} from the durable tier; a chain of callbacks rather than an async function, for the cost of every read that misses memory. */
  #readDurable(state: NamespaceState, key: string, scope: CallScope | undefined, durable: DurableTier): Promise<Read | undefined> {
    // The caller stops waiting when its call ends early; the load, shared with later callers of the key, runs under its own scope.
    return this.#readThrough(state, key, scope, (load) => durable.get(state.name, key, load)).then((envelope) => {
      if (envelope === undefined) return undefined;
      const read: Read = { envelope, tier: durable.name };
      if (!isTagged(envelope)) return read;
      return this.#hidden(state, [envelope], scope).then(([hidden]) => (hidden ? undefined : read));
    });
  }

  /**
   * For each envelope, whether an invalidation of one of its tags hides it:
   * some tag's epoch is above the one it was written with. Tag epochs this
   * instance does not know are read from the durable tier, in one read.
   */
  async #hidden(state: NamespaceState, envelopes: readonly (Uint8Array | undefined)[], scope: CallScope | undefined): Promise<boolean[]> {
    const hidden = envelopes.map(() => false);
    let pending: { index: number; stamp: TagStamp; unknown: string[] }[] | undefined;
    envelopes.forEach((envelope, index) => {
      if (envelope === undefined || !isTagged(envelope)) return;
      const stamp = readTagSection(envelope)!;
      const unknown: string[] = [];
      for (const tag of stamp.tags) {
        const epoch = state.tags.epochOf(tag);
        if (epoch === undefined) unknown.push(tag);
        else if (epoch > stamp.epoch) hidden[index] = true;
      }
      if (!hidden[index] && unknown.length > 0) (pending ??= []).push({ index, stamp, unknown });
    });
    const durable = this.#options.durable;
    if (pending === undefined || !durable) return hidden;
    const tags = [...new Set(pending.flatMap((p) => p.unknown))];
    const generation = state.tags.generation;
    const read = await durable.tagEpochs(state.name, tags, scope);
    const before = state.tags.bytes;
    state.tags.remember(tags, read.epochs, generation);
    if (state.registered && state.tags.bytes > before) this.budget?.added(state.tags.bytes - before);
    const epochs = new Map(tags.map((tag, i) => [tag, read.epochs[i]!]));
    for (const { index, stamp, unknown } of pending) hidden[index] = unknown.some((tag) => epochs.get(tag)! > stamp.epoch);
    return hidden;
  }

  /** Reads one key; undefined on a miss. Only fresh values, unless `acceptStale` (GetOrLease). */
  /**
   * What {@link get} would return, synchronously, when the memory tier can
   * tell alone (a fresh copy without tags of a namespace in memory); else
   * {@link NEEDS_ASYNC}, and nothing was counted: call {@link get}. The hot
   * path of a memory hit, without a promise.
   */
  getNow(namespace: string, key: string): FoundValue | undefined | typeof NEEDS_ASYNC {
    checkKey(key, this.#options.maxKeyBytes);
    const state = this.#namespaces.get(checkNamespace(namespace));
    if (state === undefined) return NEEDS_ASYNC;
    const cached = state.memory.peek(key);
    if (cached === undefined || isTagged(cached)) return NEEDS_ASYNC;
    state.memory.get(key);
    return this.#visible(key, cached, "memory", false);
  }

  get(namespace: string, key: string, scope?: CallScope, acceptStale = false): Promise<FoundValue | undefined> {
    try {
      checkKey(key, this.#options.maxKeyBytes);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#inNamespace(namespace, "other", (state) => this.#read(state, key, scope)).then((read) => read && this.#visible(key, read.envelope, read.tier, acceptStale));
  }

  /**
   * Reads several keys of one namespace: the distinct keys found fresh, in
   * the order first asked. Fails with ValueTooLargeError, before decoding
   * anything, when the values would make a response over `maxResponseBytes`.
   */
  async getMany(namespace: string, keys: readonly string[], scope?: CallScope, maxResponseBytes = Infinity): Promise<FoundValue[]> {
    const hits = await this.lookupMany(namespace, keys, scope);
    checkResponseSize(hits, maxResponseBytes);
    return this.decodeMany(hits);
  }

  /**
   * The fresh values of several keys of one namespace, not yet decoded: the
   * distinct keys found, in the order first asked, each with the size it
   * takes in a response (from its header: nothing is decompressed).
   * `missing`, when given, receives the distinct keys not found, in the same order.
   */
  async lookupMany(namespace: string, keys: readonly string[], scope?: CallScope, missing?: string[]): Promise<Hit[]> {
    checkBatch(keys.length, this.#options.maxBatch);
    for (const key of keys) checkKey(key, this.#options.maxKeyBytes);
    return this.#inNamespace(namespace, "other", (state) => this.#lookupMany(state, keys, scope, missing));
  }

  async #lookupMany(state: NamespaceState, keys: readonly string[], scope: CallScope | undefined, missing?: string[]): Promise<Hit[]> {
    const unique = keys.length === 1 ? keys : [...new Set(keys)];
    const envelopes: (Uint8Array | undefined)[] = unique.map((key) => state.memory.get(key));
    const tiers: TierName[] = envelopes.map(() => "memory");
    const durable = this.#options.durable;
    const notInMemory = durable ? unique.filter((_, i) => envelopes[i] === undefined) : [];
    if (durable && notInMemory.length > 0) {
      // A key another call is loading joins that load; the rest are fetched in one batch.
      const joined = notInMemory.map((key) => state.loads.join(key, scope));
      const toFetch = notInMemory.filter((_, i) => joined[i] === undefined);
      const batch = toFetch.length > 0 ? this.#readThroughMany(state, toFetch, scope, (load) => durable.getMany(state.name, toFetch, load)) : Promise.resolve([]);
      const [fetched, fromOthers] = await Promise.all([batch, Promise.all(joined)]);
      let f = 0;
      let m = 0;
      unique.forEach((_, i) => {
        if (envelopes[i] !== undefined) return;
        const at = m++;
        envelopes[i] = joined[at] !== undefined ? fromOthers[at] : fetched[f++];
        tiers[i] = durable.name;
      });
    }
    const now = this.#clock();
    const hidden = await this.#hidden(state, envelopes, scope);
    const hits: Hit[] = [];
    unique.forEach((key, i) => {
      const envelope = envelopes[i];
      if (envelope !== undefined && !hidden[i] && freshness(envelope, now) === "fresh") {
        hits.push({ key, envelope, tier: tiers[i]!, responseBytes: responseBytesOf(key, envelope) });
      } else {
        missing?.push(key);
      }
    });
    return hits;
  }

  /** Decodes hits of {@link lookupMany} (decompressing them if needed), all as of one reading of the clock. */
  decodeMany(hits: readonly Hit[]): FoundValue[] {
    const now = this.#clock();
    const found = new Array<FoundValue>(hits.length);
    for (let i = 0; i < hits.length; i++) {
      const hit = hits[i]!;
      found[i] = this.#visible(hit.key, hit.envelope, hit.tier, true, now) ?? this.#expired(hit);
    }
    return found;
  }

  /**
   * {@link decodeMany} for a writer that copies the values into a response:
   * the same answers, without copying a stored value out of its envelope.
   */
  placeMany(hits: readonly Hit[]): FoundInPlace[] {
    const now = this.#clock();
    const codec = this.#options.codec;
    const placed = new Array<FoundInPlace>(hits.length);
    for (let i = 0; i < hits.length; i++) {
      const { key, envelope, tier } = hits[i]!;
      const layout = codec.layout(envelope);
      const bytes = layout.compressed ? codec.payload(envelope, layout) : envelope;
      const valueStart = layout.compressed ? 0 : layout.payloadOffset;
      const state = freshnessAt(layout, now);
      if (state === "gone") {
        // As #expired: fresh when it was found.
        placed[i] = { key, bytes, valueStart, contentTypeBytes: layout.contentTypeBytes, ttlRemainingMs: 1, tier, stale: false, freshRemainingMs: 1 };
        continue;
      }
      const stale = state === "stale";
      const ttlRemainingMs = ttlRemainingAt(layout.expiresAt, now);
      placed[i] = { key, bytes, valueStart, contentTypeBytes: layout.contentTypeBytes, ttlRemainingMs, tier, stale, freshRemainingMs: freshRemainingAt(layout.freshUntil, stale, ttlRemainingMs, now) };
    }
    return placed;
  }

  /** A hit that expired between lookup and decode is still answered as it was found: it was fresh when read. */
  #expired(hit: Hit): FoundValue {
    const decoded = this.#options.codec.decode(hit.envelope);
    return { key: hit.key, value: decoded.value, contentType: decoded.contentType, ttlRemainingMs: 1, tier: hit.tier, stale: false, freshRemainingMs: 1, expiresAt: decoded.expiresAt };
  }

  /** The write of `entry`, and the TTL it got (after jitter, without grace; 0 = none). */
  #encode(state: NamespaceState, entry: ValueToSet, tagCounter: number): DurableWrite & { readonly ttl: number } {
    checkKey(entry.key, this.#options.maxKeyBytes);
    const { expiresAt, freshUntil, ttl } = this.#expiry(state, entry.ttlMs, entry.graceMs);
    const tags = entry.tags === undefined || entry.tags.length === 0 ? undefined : { epoch: tagCounter, tags: distinctTags(entry.tags) };
    const envelope = this.#options.codec.encode(entry.value, entry.contentType, expiresAt, freshUntil, tags);
    return { key: entry.key, envelope, expiresAt, ttl };
  }

  /** Throws what encoding `entry` would throw (key, TTL, grace, value size, content type), without encoding it. */
  #checkEntry(entry: ValueToSet): void {
    checkKey(entry.key, this.#options.maxKeyBytes);
    checkTtl(entry.ttlMs);
    checkTtl(entry.graceMs ?? 0, "grace_ms");
    this.#options.codec.check(entry.value, entry.contentType);
  }

  /**
   * The namespace's tag counter, read before a tagged write (from the durable
   * tier, which every instance shares): an invalidation that lands after this
   * read, even before the write, hides the value (a miss, never a stale hit).
   */
  async #tagCounter(state: NamespaceState, entries: readonly ValueToSet[], scope: CallScope | undefined): Promise<number> {
    let tagged = false;
    for (const entry of entries) {
      if (entry.tags === undefined || entry.tags.length === 0) continue;
      const problem = tagsProblem(entry.tags, MAX_TAGS_PER_ENTRY, `entry ${JSON.stringify(entry.key.slice(0, 40))}`);
      if (problem !== undefined) throw new InvalidArgumentError(problem);
      tagged = true;
    }
    if (!tagged) return 0;
    const durable = this.#options.durable;
    if (!durable) return state.tags.counter;
    // Bad input is refused as such, before the durable tier is asked anything (it may be down).
    for (const entry of entries) this.#checkEntry(entry);
    try {
      return (await durable.tagEpochs(state.name, [], scope)).counter;
    } catch (err) {
      // A degraded write (memory only) goes on with counter 0: any earlier invalidation of its tags hides it (a miss, never stale).
      if (err instanceof TierUnavailableError && this.#options.degradedWrites && !cancelled(scope)) return 0;
      throw err;
    }
  }

  /** Writes one value to every tier. */
  async set(namespace: string, entry: ValueToSet, scope?: CallScope): Promise<WriteOutcome> {
    return this.setMany(namespace, [entry], scope);
  }

  /** Writes several values of one namespace to every tier; a key given twice keeps the last value. */
  async setMany(namespace: string, entries: readonly ValueToSet[], scope?: CallScope): Promise<WriteOutcome> {
    return this.#inNamespace(
      namespace,
      "write",
      async (state) => {
        try {
          return await this.#write(state, entries, scope);
        } catch (err) {
          for (const entry of entries) if (entry.leaseToken) void this.#releaseLease(state.name, entry.key, entry.leaseToken);
          throw err;
        }
      },
      scope?.tenant,
    );
  }

  async #write(state: NamespaceState, entries: readonly ValueToSet[], scope: CallScope | undefined): Promise<WriteOutcome> {
    checkBatch(entries.length, this.#options.maxBatch);
    const tagCounter = await this.#tagCounter(state, entries, scope);
    const encoded = entries.map((entry) => this.#encode(state, entry, tagCounter));
    const keptFrom = state.memory.firstSurvivor(encoded.length, (i) => encoded[i]!.key, (i) => encoded[i]!.envelope, (i) => encoded[i]!.expiresAt);
    const writes = withOwnedEnvelopes(encoded, keptFrom);
    const durable = this.#options.durable;
    const change: Change = { kind: "set", namespace: state.name, keys: writes.map((w) => w.key) };
    const origin = entries.length === 1 ? entries[0]!.origin : undefined;
    if (origin !== undefined) change.origin = origin;
    const degraded = await this.#commit(
      state,
      change,
      async () => {
        if (!durable) return false;
        try {
          const fenced = writes.length === 1 && durable.leases !== undefined ? entries[0]!.leaseToken : undefined;
          if (fenced !== undefined) {
            if (!(await durable.leases!.setFenced(state.name, writes[0]!, fenced, scope, change))) {
              throw new LeaseLostError(`the lease on ${JSON.stringify(writes[0]!.key)} lapsed and another caller holds it now: this value was not stored`);
            }
          } else if (writes.length === 1) await durable.set(state.name, writes[0]!, scope);
          else await durable.setMany(state.name, writes, scope);
          state.durable.sets += writes.length;
          return false;
        } catch (err) {
          if (!(err instanceof TierUnavailableError) || !this.#options.degradedWrites || cancelled(scope)) throw err;
          state.written.degraded += writes.length;
          return true;
        }
      },
      () => {
        // A batch longer than the memory tier: the writes it would evict at once are not copied in (only their old copies go).
        const from = state.memory.firstSurvivor(writes.length, (i) => writes[i]!.key, (i) => writes[i]!.envelope, (i) => writes[i]!.expiresAt);
        writes.forEach((write, i) => {
          if (i < from) state.memory.delete(write.key);
          else this.#keep(state, write.key, write.envelope, write.expiresAt);
          state.written.bytesIn += entries[i]!.value.byteLength;
          state.written.bytesStored += write.envelope.byteLength;
        });
        for (const entry of entries) {
          if (!entry.leaseToken) continue;
          this.#leases.release(state.name, entry.key, entry.leaseToken);
          // A fenced write ended its shared lease itself; any other write of a lease holder gives it back.
          if (durable?.leases && entries.length > 1) void durable.leases.release(state.name, entry.key, entry.leaseToken).catch(() => false);
        }
      },
    );
    return { stored: writes.length, degraded, ttlMs: writes.length === 1 ? writes[0]!.ttl : 0 };
  }

  /** Removes one key from every tier; true when some tier held it. */
  async delete(namespace: string, key: string, scope?: CallScope): Promise<boolean> {
    return (await this.deleteMany(namespace, [key], scope)) > 0;
  }

  /** Removes keys from every tier; how many of the distinct keys held a fresh value. */
  async deleteMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<number> {
    checkBatch(keys.length, this.#options.maxBatch);
    for (const key of keys) checkKey(key, this.#options.maxKeyBytes);
    const unique = keys.length === 1 ? keys : [...new Set(keys)];
    return this.#inNamespace(namespace, "other", (state) => this.#deleteMany(state, unique, scope));
  }

  async #deleteMany(state: NamespaceState, unique: readonly string[], scope: CallScope | undefined): Promise<number> {
    const durable = this.#options.durable;
    const now = this.#clock();
    const freshInMemory = unique.filter((key) => {
      const cached = state.memory.peek(key);
      return cached !== undefined && isFresh(cached, now);
    }).length;
    return this.#commit(
      state,
      { kind: "delete", namespace: state.name, keys: unique },
      async () => {
        if (!durable) return freshInMemory;
        const removed = unique.length === 1 ? Number(await durable.delete(state.name, unique[0]!, scope)) : await durable.deleteMany(state.name, unique, scope);
        state.durable.deletes += removed;
        return Math.max(removed, freshInMemory);
      },
      () => {
        for (const key of unique) state.memory.delete(key);
      },
    );
  }

  /** True when the key holds a fresh value (a stale one within grace is not there for plain reads). */
  async has(namespace: string, key: string, scope?: CallScope): Promise<boolean> {
    checkKey(key, this.#options.maxKeyBytes);
    return this.#inNamespace(namespace, "other", async (state) => {
      const cached = state.memory.get(key);
      if (cached !== undefined) return isFresh(cached, this.#clock()) && !(await this.#hidden(state, [cached], scope))[0];
      if (!this.#options.durable) return false;
      // One read of the whole envelope (promoted like a Get): only it tells the value's tags, which may hide it.
      const read = await this.#read(state, key, scope);
      return read !== undefined && isFresh(read.envelope, this.#clock());
    });
  }

  /** Gives a key holding a fresh value a new TTL (ending any grace period) in every tier; false when it holds none. */
  async touch(namespace: string, key: string, ttlMs: number, scope?: CallScope): Promise<boolean> {
    checkKey(key, this.#options.maxKeyBytes);
    return this.#inNamespace(namespace, "other", (state) => this.#touch(state, key, ttlMs, scope));
  }

  async #touch(state: NamespaceState, key: string, ttlMs: number, scope: CallScope | undefined): Promise<boolean> {
    const { expiresAt } = this.#expiry(state, ttlMs);
    const durable = this.#options.durable;
    return this.#commit(
      state,
      { kind: "touch", namespace: state.name, keys: [key] },
      async () => {
        if (durable) return durable.touch(state.name, key, expiresAt, scope);
        const cached = state.memory.peek(key);
        return cached !== undefined && isFresh(cached, this.#clock());
      },
      (found) => {
        const cached = state.memory.peek(key);
        if (found && cached !== undefined) state.memory.set(key, withNewExpiry(cached, expiresAt), expiresAt);
        else if (!found && durable) state.memory.delete(key);
      },
    );
  }

  /**
   * Hides every value of the namespace written before now with any of
   * `tags`, in every tier and on every instance, whatever their number: one
   * small durable write, and one change event (Watch kind TAGS).
   */
  async invalidateTags(namespace: string, tags: readonly string[], scope?: CallScope): Promise<void> {
    if (tags.length === 0) throw new InvalidArgumentError("InvalidateTags needs at least one tag");
    const problem = tagsProblem(tags, MAX_TAGS_PER_INVALIDATION, "InvalidateTags");
    if (problem !== undefined) throw new InvalidArgumentError(problem);
    const unique = distinctTags(tags);
    const durable = this.#options.durable;
    await this.#inNamespace(namespace, "other", (state) => {
      const generation = state.tags.generation;
      const before = state.tags.bytes;
      return this.#commit(
        state,
        { kind: "tags", namespace: state.name, keys: unique },
        async () => {
          state.written.tagInvalidations++;
          return durable ? durable.invalidateTags(state.name, unique, scope) : state.tags.invalidate(unique);
        },
        (epoch) => {
          // After a forget meanwhile (a change heard from elsewhere) the new epoch may be older than one heard of since:
          // the tags are then read again, and an epoch known from before this invalidation must not stay to unhide them.
          // Not all remembered (an eviction meanwhile): the rest may hold older epochs, so all of them are read again.
          if (durable && !state.tags.remember(unique, unique.map(() => epoch), generation)) state.tags.forget(unique);
          if (state.registered && state.tags.bytes > before) this.budget?.added(state.tags.bytes - before);
        },
      );
    });
  }

  /** Empties one namespace in every tier. */
  async clear(namespace: string, scope?: CallScope): Promise<void> {
    const durable = this.#options.durable;
    await this.#inNamespace(namespace, "other", (state) =>
      this.#commit(
        state,
        { kind: "clear", namespace: state.name, keys: [] },
        async () => {
          if (durable) await durable.clear(state.name, scope);
        },
        () => state.memory.clear(),
      ),
    );
  }

  /** The namespace's `ttlJitter` (0 to 1): a write's TTL may come out shorter than asked by up to this fraction. */
  ttlJitter(namespace: string): number {
    const name = checkNamespace(namespace);
    return (this.#namespaces.get(name)?.settings ?? this.#options.settingsFor(name)).ttlJitter;
  }

  /**
   * Reads a key for a caller that will compute it on a miss: a fresh value;
   * or a stale one, with the lease when nobody holds it; or, on a miss, the
   * lease, after waiting up to `waitMs` for another holder's value. A fresh
   * value with at most `refreshAheadMs` left before it goes stale comes with
   * the lease when nobody holds it (eager refresh).
   */
  async getOrLease(namespace: string, key: string, leaseMs: number, waitMs: number, scope?: CallScope, waitOnStale = false, refreshAheadMs = 0): Promise<LeaseResult> {
    if (!Number.isInteger(leaseMs) || leaseMs < 1 || leaseMs > 600_000) throw new InvalidArgumentError(`lease_ms ${leaseMs} is out of range: use 1 to 600000`);
    if (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > 60_000) throw new InvalidArgumentError(`wait_ms ${waitMs} is out of range: use 0 to 60000`);
    const name = checkNamespace(namespace);
    const first = await this.#readOrLease(name, key, leaseMs, scope);
    let found = first.found;
    if (found && !found.stale && first.lease?.token !== undefined) {
      // Fresh by this clock though not by the tier's when it took the lease: nobody needs it.
      this.#abandonLease(name, key, first.lease.token);
      first.lease = undefined;
    }
    if (found && !found.stale) {
      const due = refreshAheadMs > 0 && found.freshRemainingMs !== 0 && found.freshRemainingMs <= refreshAheadMs;
      if (!due) return { found, leaseToken: undefined };
      const attempt = await this.#tryLease(name, key, leaseMs, false, scope, found.expiresAt);
      if (!attempt.newerValue) return { found, leaseToken: attempt.token };
      // Another instance refreshed it since this copy was read (its change may not have arrived yet): serve that instead.
      this.#namespaces.get(name)?.memory.delete(key);
      const newer = await this.get(name, key, scope, true);
      return { found: newer && !newer.stale ? newer : found, leaseToken: undefined };
    }
    // Waits use real time (timers), whatever the engine's clock.
    const deadline = performance.now() + waitMs;
    let unlessFresh = true;
    let wokenToNothing = false;
    // The script judged the value fresh when it ran; stale by the time its answer came: ask for the lease again.
    let tried = found?.stale && first.lease?.heldElsewhereMs === 0 ? undefined : first.lease;
    for (;;) {
      const attempt = tried ?? (await this.#tryLease(name, key, leaseMs, unlessFresh, scope));
      tried = undefined;
      if (attempt.token !== undefined || (found && !waitOnStale)) return { found, leaseToken: attempt.token };
      // Woken by the lease ending, nothing written, and someone took it again: the holder gave it back without a value
      // (its loader skipped or failed). Compute now without a lease rather than wait for each new holder in turn (a convoy).
      if (wokenToNothing && attempt.heldElsewhereMs !== 0) return { found, leaseToken: undefined };
      // Nobody to wait for (max-leases reached with the key free): the caller computes without a lease.
      if (attempt.heldElsewhereMs === undefined && !this.#leases.isHeld(name, key)) return { found, leaseToken: undefined };
      const left = deadline - performance.now();
      // heldElsewhereMs 0: a fresh value was written since the read above; read it whatever the deadline.
      if ((left <= 0 && attempt.heldElsewhereMs !== 0) || cancelled(scope)) return { found, leaseToken: undefined };
      const end = await this.#leases.waitFor(name, key, left, scope?.signal, attempt.heldElsewhereMs);
      if (cancelled(scope)) return { found, leaseToken: undefined };
      const reread = await this.get(name, key, scope, true);
      // The shared lease saw a fresh value that reads do not serve (its tags were invalidated): take the lease over it.
      if (reread === undefined && attempt.heldElsewhereMs === 0) unlessFresh = false;
      found = reread ?? found;
      if (found && !found.stale) return { found, leaseToken: undefined };
      wokenToNothing ||= end === "changed" && reread === undefined && attempt.heldElsewhereMs !== 0;
    }
  }

  /**
   * GetOrLease's first read (stale values included): over shared leases that
   * can read and lease in one round trip, a key that the memory tier lacks and
   * nobody is reading already is read that way, with `lease` the try for the
   * lease that came with it; else a plain read, and no try yet.
   */
  #readOrLease(name: string, key: string, leaseMs: number, scope: CallScope | undefined): Promise<{ found: FoundValue | undefined; lease?: LeaseTry | undefined }> {
    const shared = this.#options.durable?.leases;
    if (!shared?.readAndAcquire) return this.get(name, key, scope, true).then((found) => ({ found }));
    try {
      checkKey(key, this.#options.maxKeyBytes);
    } catch (err) {
      return Promise.reject(err);
    }
    const durable = this.#options.durable!;
    return this.#inNamespace(name, "other", async (state) => {
      const cached = state.memory.get(key);
      if (cached !== undefined) return { read: await this.#readHeld(state, key, scope, cached), lease: undefined };
      const token = !state.loads.has(key) && this.#leases.size < this.#maxLeases ? this.#leases.tryAcquire(name, key, leaseMs) : undefined;
      if (token === undefined) return { read: await this.#readDurable(state, key, scope, durable), lease: undefined };
      return this.#readAndLease(state, key, token, leaseMs, scope, shared);
    }).then(({ read, lease }) => ({ found: read && this.#visible(key, read.envelope, read.tier, true), lease }));
  }

  /** {@link #readDurable} and {@link #tryLease} (unless fresh) in one call to the shared leases, for `token`, which this instance's lease table has just given. */
  async #readAndLease(
    state: NamespaceState,
    key: string,
    token: string,
    leaseMs: number,
    scope: CallScope | undefined,
    shared: SharedLeases,
  ): Promise<{ read: Read | undefined; lease: LeaseTry | undefined }> {
    const name = state.name;
    let call: Promise<ReadAndLease> | undefined;
    let answer: ReadAndLease["attempt"] | undefined;
    let read: Read | undefined;
    try {
      const envelope = await this.#readThrough(state, key, scope, (load) =>
        (call = shared.readAndAcquire!(name, key, token, leaseMs, load)).then((result) => {
          answer = result.attempt;
          return result.envelope;
        }),
      );
      if (envelope !== undefined) read = { envelope, tier: this.#options.durable!.name };
      if (read && isTagged(read.envelope) && (await this.#hidden(state, [read.envelope], scope))[0]) read = undefined;
    } catch (err) {
      this.#leases.release(name, key, token, true);
      // The call may still run for other callers who joined the read, or may have taken the lease before it failed: once it has ended, give the lease back.
      call?.then(
        (result) => "acquired" in result.attempt && result.attempt.acquired && this.#abandonLease(name, key, token),
        () => this.#abandonLease(name, key, token),
      );
      throw err;
    }
    if (answer === undefined) {
      this.#leases.release(name, key, token, true);
      return { read, lease: undefined };
    }
    return { read, lease: this.#settleLeaseTry(name, key, token, answer, scope) };
  }

  /**
   * A lease, unless someone holds it or the server holds max-leases already
   * (the caller then computes without one). Over a durable tier with shared
   * leases (Redis), the lease is taken there too, so one caller across all
   * instances gets it; when that tier cannot be reached, the lease stays
   * this instance's.
   */
  async #tryLease(
    namespace: string,
    key: string,
    leaseMs: number,
    unlessFresh: boolean,
    scope: CallScope | undefined,
    seenExpiresAt?: number,
  ): Promise<LeaseTry> {
    if (this.#leases.size >= this.#maxLeases) return { token: undefined };
    const token = this.#leases.tryAcquire(namespace, key, leaseMs);
    if (token === undefined) return { token: undefined };
    const shared = this.#options.durable?.leases;
    if (!shared) return this.#settleLeaseTry(namespace, key, token, { acquired: true }, scope);
    let answer: LeaseAttempt | LeaseRequestFailed;
    try {
      answer = await shared.acquire(namespace, key, token, leaseMs, unlessFresh, scope, seenExpiresAt);
    } catch (failed) {
      answer = { failed };
    }
    return this.#settleLeaseTry(namespace, key, token, answer, scope, seenExpiresAt);
  }

  /**
   * What a try for the lease this instance's table gave `token` came to, from
   * the shared leases' answer (or the failure of the request): refused (and
   * given back here); kept, also when the durable tier cannot be reached
   * (the lease stays this instance's); or given back, when the caller's call
   * has ended. Throws the failure of a request whose caller has ended, or
   * that is not the tier being unavailable.
   */
  #settleLeaseTry(namespace: string, key: string, token: string, answer: LeaseAttempt | LeaseRequestFailed, scope: CallScope | undefined, seenExpiresAt?: number): LeaseTry {
    if ("failed" in answer) {
      if (!(answer.failed instanceof TierUnavailableError) || callEnded(scope)) {
        // The request may have reached Redis and taken the lease there after all: give it back.
        this.#leases.release(namespace, key, token, true);
        this.#abandonLease(namespace, key, token);
        throw answer.failed;
      }
    } else if (!answer.acquired) {
      this.#leases.release(namespace, key, token, true);
      if (seenExpiresAt !== undefined && answer.freshValue) return { token: undefined, heldElsewhereMs: 0, newerValue: true };
      return { token: undefined, heldElsewhereMs: answer.heldForMs };
    }
    if (cancelled(scope)) {
      // Nobody can receive the token any more. (A deadline passed by the wall clock alone is not enough here: the
      // answer may still be written before the call's timer runs, and a caller answered without a token computes unfenced.)
      this.#abandonLease(namespace, key, token);
      return { token: undefined };
    }
    this.budget?.added(LEASE_OVERHEAD_BYTES);
    return { token };
  }

  /** Gives a lease back without a value; true when `token` held it (here, or in the shared leases). */
  async releaseLease(namespace: string, key: string, token: string): Promise<boolean> {
    const name = checkNamespace(namespace);
    checkKey(key, this.#options.maxKeyBytes);
    return this.#releaseLease(name, key, token);
  }

  /**
   * Gives back a lease `token` holds or may hold (here, and in the background
   * in the shared leases, until Redis answers: see {@link LeaseGiveBacks}) that no caller will use.
   */
  #abandonLease(namespace: string, key: string, token: string): void {
    this.#leases.release(namespace, key, token);
    this.#giveBacks?.giveBack(namespace, key, token);
  }

  async #releaseLease(namespace: string, key: string, token: string): Promise<boolean> {
    const here = this.#leases.release(namespace, key, token);
    const shared = this.#options.durable?.leases;
    if (!shared) return here;
    const there = await shared.release(namespace, key, token).catch(() => false);
    // Wakes the callers other instances hold waiting for this lease: announced as a touch of the key,
    // which every instance and watcher already handles (it drops copies of the key; it holds none fresh, or a refresh failed).
    if (there) this.#options.onChange?.({ kind: "touch", namespace, keys: [key] });
    return here || there;
  }

  /**
   * Counters of one namespace (zeros when it never counted anything), or of
   * every namespace the server has seen: those holding state and those whose
   * counters are archived (the archive is bounded; see {@link CounterArchive}).
   * A namespace's counters never go down while it is listed.
   */
  stats(namespace?: string): NamespaceStatsSnapshot[] {
    if (namespace !== undefined) {
      const name = checkNamespace(namespace);
      const state = this.#namespaces.get(name);
      return [this.#snapshot(name, state, this.#archive.peek(name))];
    }
    const held = [...this.#namespaces.values()].map((state) => this.#snapshot(state.name, state, this.#archive.peek(state.name)));
    for (const [name, counters] of this.#archive.records()) if (!this.#namespaces.has(name)) held.push(this.#snapshot(name, undefined, counters));
    return held;
  }

  /** The snapshot of a namespace from its state (if held) and its archived counters (if any). */
  #snapshot(name: string, state: NamespaceState | undefined, archived: NamespaceCounters | undefined): NamespaceStatsSnapshot {
    const durable = this.#options.durable;
    let counters = state?.counters ?? archived ?? new NamespaceCounters();
    if (state && archived) {
      counters = new NamespaceCounters();
      counters.merge(state.counters);
      counters.merge(archived);
    }
    return snapshotNamespace(name, state?.memory ?? EMPTY_TIER, durable && { name: durable.name, counters: counters.durable }, counters.written, counters.memoryBase);
  }

  /** Closes the durable tier. */
  async close(): Promise<void> {
    this.#giveBacks?.close();
    await this.#options.durable?.close();
  }
}
