import { systemClock, type Clock } from "../../core/clock.js";
import type { ValueCodec } from "../../core/codec.js";
import { freshness, isFresh, readExpiresAt, withNewExpiry } from "../../core/envelope.js";
import { InvalidArgumentError, TierUnavailableError, ValueTooLargeError } from "../../core/errors.js";
import { MemoryTier, type EvictionPolicyName } from "../../core/memory-tier.js";
import type { CallScope, DurableTier, DurableWrite, TierName } from "./durable-tier.js";
import { DurableCounters, snapshotNamespace, type NamespaceStatsSnapshot } from "./namespace-stats.js";
import { InvalidationBus, type Change } from "./invalidation-bus.js";
import { LeaseTable } from "./lease-table.js";
import { SingleFlight } from "./single-flight.js";
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
  /** Most namespaces held at once; a new one past it is refused. */
  maxNamespaces: number;
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
}

/** Rejects when the scope's signal aborts first; a shared load itself keeps running for its other callers. */
function withinScope<T>(promise: Promise<T>, scope: CallScope | undefined): Promise<T> {
  const signal = scope?.signal;
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

class NamespaceState {
  readonly memory: MemoryTier<Uint8Array>;
  /** Durable reads in flight, per key: concurrent misses share one. */
  readonly loads = new SingleFlight<Uint8Array | undefined>();
  readonly durable = new DurableCounters();
  readonly written = { bytesIn: 0, bytesStored: 0, degraded: 0 };
  constructor(
    readonly name: string,
    readonly settings: NamespaceSettings,
    clock: Clock,
  ) {
    this.memory = new MemoryTier<Uint8Array>({
      maxEntries: settings.memoryMaxEntries,
      maxBytes: settings.memoryMaxBytes,
      policy: settings.policy,
      clock,
    });
  }
}

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
  /** Numbers and delivers the changes of each namespace to watchers. */
  readonly bus = new InvalidationBus();

  constructor(options: CacheEngineOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#leases = new LeaseTable(this.#clock);
  }

  #changed(change: Change): void {
    this.bus.publish(change);
    this.#options.onChange?.(change);
  }

  /**
   * Applies a change made by another server instance: drops the memory
   * tier's copies and tells this instance's watchers.
   */
  applyRemoteChange(change: Change): void {
    const state = this.#namespaces.get(change.namespace);
    if (state) this.#drop(state, change);
    this.bus.publish(change);
  }

  /** Drops every memory-tier copy and resets every watcher (changes from other instances may have been missed). */
  forgetRemoteState(): void {
    for (const state of this.#namespaces.values()) this.#drop(state, { kind: "clear", namespace: state.name, keys: [] });
    this.bus.resetAll();
  }

  /** Forgets the memory copies and in-flight loads a change makes stale. */
  #drop(state: NamespaceState, change: Change): void {
    this.#forgetLoads(state, change);
    if (change.kind === "clear") state.memory.clear();
    else for (const key of change.keys) state.memory.delete(key);
  }

  /** Detaches in-flight durable reads of the change's keys (all of them for a clear): they will not be promoted. */
  #forgetLoads(state: NamespaceState, change: Change): void {
    if (change.kind === "clear") state.loads.forgetAll();
    else for (const key of change.keys) state.loads.forget(key);
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
    let result: T;
    try {
      result = await durablePart();
    } catch (err) {
      this.#drop(state, change);
      this.#changed(change);
      for (const key of change.keys) this.#leases.notifyWritten(state.name, key);
      throw err;
    }
    this.#forgetLoads(state, change);
    applyToMemory(result);
    for (const key of change.keys) this.#leases.notifyWritten(state.name, key);
    this.#changed(change);
    return result;
  }

  /** The durable tier's name, or undefined when the engine is memory only. */
  get durableTier(): TierName | undefined {
    return this.#options.durable?.name;
  }

  #namespace(name: string): NamespaceState {
    const ns = checkNamespace(name);
    let state = this.#namespaces.get(ns);
    if (!state) {
      if (this.#namespaces.size >= this.#options.maxNamespaces) {
        throw new ValueTooLargeError(`namespace ${JSON.stringify(ns)} would exceed max-namespaces (${this.#options.maxNamespaces})`);
      }
      state = new NamespaceState(ns, this.#options.settingsFor(ns), this.#clock);
      this.#namespaces.set(ns, state);
    }
    return state;
  }

  /**
   * What a read returns for an envelope: nothing when it is gone, or stale
   * and the caller wants fresh values only (checked on the header, before
   * any decompression).
   */
  #visible(key: string, envelope: Uint8Array, tier: TierName, acceptStale: boolean): FoundValue | undefined {
    const now = this.#clock();
    const state = freshness(envelope, now);
    if (state === "gone" || (state === "stale" && !acceptStale)) return undefined;
    const decoded = this.#options.codec.decode(envelope);
    const ttlRemainingMs = decoded.expiresAt === 0 ? 0 : Math.max(1, decoded.expiresAt - now);
    const stale = state === "stale";
    const freshRemainingMs = decoded.freshUntil === 0 ? ttlRemainingMs : stale ? 0 : Math.max(1, decoded.freshUntil - now);
    return { key, value: decoded.value, contentType: decoded.contentType, ttlRemainingMs, tier, stale, freshRemainingMs };
  }

  /** Absolute expiry of a write, and the end of its fresh period when it has grace (0 = none). */
  #expiry(state: NamespaceState, ttlMs: number, graceMs = 0): { expiresAt: number; freshUntil: number } {
    checkTtl(ttlMs);
    checkTtl(graceMs);
    const ttl = ttlMs === 0 ? state.settings.defaultTtlMs : ttlMs;
    if (ttl === 0) return { expiresAt: 0, freshUntil: 0 };
    const jitter = state.settings.ttlJitter;
    const shortened = jitter === 0 ? ttl : Math.max(1, ttl - Math.floor(this.#random() * jitter * ttl));
    const freshUntil = this.#clock() + shortened;
    return graceMs === 0 ? { expiresAt: freshUntil, freshUntil: 0 } : { expiresAt: freshUntil + graceMs, freshUntil };
  }

  /**
   * Reads `key` through the durable tier (joining a read already in flight)
   * and promotes a live hit, unless a change to the key came meanwhile.
   */
  #readThrough(state: NamespaceState, key: string, fetch: () => Promise<Uint8Array | undefined>): Promise<Uint8Array | undefined> {
    return state.loads.run(key, async (isCurrent) => {
      const envelope = await fetch();
      const now = this.#clock();
      if (envelope === undefined || freshness(envelope, now) === "gone") {
        state.durable.misses++;
        return undefined;
      }
      state.durable.hits++;
      if (isCurrent()) state.memory.set(key, envelope, readExpiresAt(envelope));
      return envelope;
    });
  }

  /** The envelope of `key` from memory, or else read through the durable tier; undefined when neither has it. */
  async #read(state: NamespaceState, key: string, scope: CallScope | undefined): Promise<{ envelope: Uint8Array; tier: TierName } | undefined> {
    const cached = state.memory.get(key);
    if (cached !== undefined) return { envelope: cached, tier: "memory" };
    const durable = this.#options.durable;
    if (!durable) return undefined;
    const envelope = await withinScope(this.#readThrough(state, key, () => durable.get(state.name, key, scope)), scope);
    return envelope === undefined ? undefined : { envelope, tier: durable.name };
  }

  /** Reads one key; undefined on a miss. Only fresh values, unless `acceptStale` (GetOrLease). */
  async get(namespace: string, key: string, scope?: CallScope, acceptStale = false): Promise<FoundValue | undefined> {
    const state = this.#namespace(namespace);
    checkKey(key, this.#options.maxKeyBytes);
    const read = await this.#read(state, key, scope);
    return read && this.#visible(key, read.envelope, read.tier, acceptStale);
  }

  /** Reads several keys of one namespace: the distinct keys found fresh, in the order first asked. */
  async getMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<FoundValue[]> {
    const state = this.#namespace(namespace);
    checkBatch(keys.length, this.#options.maxBatch);
    for (const key of keys) checkKey(key, this.#options.maxKeyBytes);
    const unique = keys.length === 1 ? keys : [...new Set(keys)];
    const envelopes: (Uint8Array | undefined)[] = unique.map((key) => state.memory.get(key));
    const tiers: TierName[] = envelopes.map(() => "memory");
    const durable = this.#options.durable;
    const missing = durable ? unique.filter((_, i) => envelopes[i] === undefined) : [];
    if (durable && missing.length > 0) {
      const toFetch = missing.filter((key) => !state.loads.has(key));
      const batch = toFetch.length > 0 ? durable.getMany(state.name, toFetch, scope) : Promise.resolve([]);
      const position = new Map(toFetch.map((key, i) => [key, i]));
      const fetched = await withinScope(
        Promise.all(missing.map((key) => this.#readThrough(state, key, async () => (await batch)[position.get(key)!]))),
        scope,
      );
      let m = 0;
      unique.forEach((_, i) => {
        if (envelopes[i] !== undefined) return;
        envelopes[i] = fetched[m++];
        tiers[i] = durable.name;
      });
    }
    const found: FoundValue[] = [];
    unique.forEach((key, i) => {
      const envelope = envelopes[i];
      const value = envelope && this.#visible(key, envelope, tiers[i]!, false);
      if (value) found.push(value);
    });
    return found;
  }

  #encode(state: NamespaceState, entry: ValueToSet): DurableWrite {
    checkKey(entry.key, this.#options.maxKeyBytes);
    const { expiresAt, freshUntil } = this.#expiry(state, entry.ttlMs, entry.graceMs);
    const envelope = this.#options.codec.encode(entry.value, entry.contentType, expiresAt, freshUntil);
    return { key: entry.key, envelope, expiresAt };
  }

  /** Writes one value to every tier. */
  async set(namespace: string, entry: ValueToSet, scope?: CallScope): Promise<WriteOutcome> {
    return this.setMany(namespace, [entry], scope);
  }

  /** Writes several values of one namespace to every tier; a key given twice keeps the last value. */
  async setMany(namespace: string, entries: readonly ValueToSet[], scope?: CallScope): Promise<WriteOutcome> {
    const state = this.#namespace(namespace);
    try {
      return await this.#write(state, entries, scope);
    } catch (err) {
      for (const entry of entries) if (entry.leaseToken) this.#leases.release(state.name, entry.key, entry.leaseToken);
      throw err;
    }
  }

  async #write(state: NamespaceState, entries: readonly ValueToSet[], scope: CallScope | undefined): Promise<WriteOutcome> {
    checkBatch(entries.length, this.#options.maxBatch);
    const writes = entries.map((entry) => this.#encode(state, entry));
    const durable = this.#options.durable;
    const change: Change = { kind: "set", namespace: state.name, keys: writes.map((w) => w.key) };
    const degraded = await this.#commit(
      state,
      change,
      async () => {
        if (!durable) return false;
        try {
          if (writes.length === 1) await durable.set(state.name, writes[0]!, scope);
          else await durable.setMany(state.name, writes, scope);
          state.durable.sets += writes.length;
          return false;
        } catch (err) {
          if (!(err instanceof TierUnavailableError) || !this.#options.degradedWrites || scope?.signal?.aborted) throw err;
          state.written.degraded += writes.length;
          return true;
        }
      },
      () => {
        writes.forEach((write, i) => {
          state.memory.set(write.key, write.envelope, write.expiresAt);
          state.written.bytesIn += entries[i]!.value.byteLength;
          state.written.bytesStored += write.envelope.byteLength;
        });
        for (const entry of entries) if (entry.leaseToken) this.#leases.release(state.name, entry.key, entry.leaseToken);
      },
    );
    return { stored: writes.length, degraded };
  }

  /** Removes one key from every tier; true when some tier held it. */
  async delete(namespace: string, key: string, scope?: CallScope): Promise<boolean> {
    return (await this.deleteMany(namespace, [key], scope)) > 0;
  }

  /** Removes keys from every tier; how many of the distinct keys held a fresh value. */
  async deleteMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<number> {
    const state = this.#namespace(namespace);
    checkBatch(keys.length, this.#options.maxBatch);
    for (const key of keys) checkKey(key, this.#options.maxKeyBytes);
    const unique = keys.length === 1 ? keys : [...new Set(keys)];
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
    const state = this.#namespace(namespace);
    checkKey(key, this.#options.maxKeyBytes);
    const cached = state.memory.get(key);
    if (cached !== undefined) return isFresh(cached, this.#clock());
    const durable = this.#options.durable;
    return durable ? durable.has(state.name, key, scope) : false;
  }

  /** Gives a key holding a fresh value a new TTL (ending any grace period) in every tier; false when it holds none. */
  async touch(namespace: string, key: string, ttlMs: number, scope?: CallScope): Promise<boolean> {
    const state = this.#namespace(namespace);
    checkKey(key, this.#options.maxKeyBytes);
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

  /** Empties one namespace in every tier. */
  async clear(namespace: string, scope?: CallScope): Promise<void> {
    const state = this.#namespace(namespace);
    const durable = this.#options.durable;
    await this.#commit(
      state,
      { kind: "clear", namespace: state.name, keys: [] },
      async () => {
        if (durable) await durable.clear(state.name, scope);
      },
      () => state.memory.clear(),
    );
  }

  /**
   * Reads a key for a caller that will compute it on a miss: a fresh value;
   * or a stale one, with the lease when nobody holds it; or, on a miss, the
   * lease, after waiting up to `waitMs` for another holder's value.
   */
  async getOrLease(namespace: string, key: string, leaseMs: number, waitMs: number, scope?: CallScope, waitOnStale = false): Promise<LeaseResult> {
    if (!Number.isInteger(leaseMs) || leaseMs < 1 || leaseMs > 600_000) throw new InvalidArgumentError(`lease_ms ${leaseMs} is out of range: use 1 to 600000`);
    if (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > 60_000) throw new InvalidArgumentError(`wait_ms ${waitMs} is out of range: use 0 to 60000`);
    const state = this.#namespace(namespace);
    let found = await this.get(state.name, key, scope, true);
    if (found && !found.stale) return { found, leaseToken: undefined };
    let leaseToken = this.#leases.tryAcquire(state.name, key, leaseMs);
    if (leaseToken || (found && !waitOnStale)) return { found, leaseToken };
    await this.#leases.waitFor(state.name, key, waitMs, scope?.signal);
    found = (await this.get(state.name, key, scope, true)) ?? found;
    if (found && !found.stale) return { found, leaseToken: undefined };
    leaseToken = this.#leases.tryAcquire(state.name, key, leaseMs);
    return { found, leaseToken };
  }

  /** Gives a lease back without a value; true when `token` held it. */
  releaseLease(namespace: string, key: string, token: string): boolean {
    const state = this.#namespace(namespace);
    checkKey(key, this.#options.maxKeyBytes);
    return this.#leases.release(state.name, key, token);
  }

  /** Counters of one namespace, or of every namespace used so far. */
  stats(namespace?: string): NamespaceStatsSnapshot[] {
    const durable = this.#options.durable;
    const states = namespace ? [this.#namespace(namespace)] : [...this.#namespaces.values()];
    return states.map((state) =>
      snapshotNamespace(state.name, state.memory, durable && { name: durable.name, counters: state.durable }, state.written),
    );
  }

  /** Closes the durable tier. */
  async close(): Promise<void> {
    await this.#options.durable?.close();
  }
}
