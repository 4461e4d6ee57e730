/**
 * The cache's semantics, stated once: what every operation of the client SDK
 * returns and how it changes the cache, for any deployment (memory only,
 * LMDB, Redis, several instances with client local tiers). Conformance tests
 * run random command sequences against this model and the real service and
 * compare every result; the README's "Semantics" section says the same in
 * prose.
 *
 * Tags: a value written with tags is hidden by a later `invalidateTags`
 * naming any of them: every read (get, getMany, streamGet, has, wrap) sees
 * nothing there. Delete and touch do not look at tags: they count a hidden
 * value by its time alone (touch keeps it hidden); a new write replaces it.
 *
 * The model is deliberately naive: a Map per namespace, times compared on
 * the clock it is given, no tiers, no eviction (tests keep far below every
 * bound), and the namespace default TTL is 0 (no expiry).
 *
 * Every method validates all its arguments before it changes anything: a call
 * the service must refuse throws {@link InvalidArgument} (gRPC status
 * INVALID_ARGUMENT) and leaves the model as it was.
 */
import { checkKey, InvalidArgument, MAX_TAGS_PER_ENTRY, MAX_TAGS_PER_INVALIDATION, resolveNamespace, resolveTags, resolveTtl } from "./rules.js";

export { InvalidArgument } from "./rules.js";

/** One stored value; times are ms on the model's clock, Infinity = never. */
export interface ModelEntry {
  readonly value: unknown;
  /** Fresh while now < freshUntil. */
  readonly freshUntil: number;
  /** Stale (within grace) while freshUntil ≤ now < goneAt; gone from goneAt on. */
  readonly goneAt: number;
  /** The distinct tags it was written with. */
  readonly tags: readonly string[];
  /** An invalidateTags named one of its tags after it was written: reads see nothing. */
  readonly hidden: boolean;
}

/** What a key holds now. */
export type KeyState =
  | { readonly state: "fresh"; readonly entry: ModelEntry }
  | { readonly state: "stale"; readonly entry: ModelEntry }
  | { readonly state: "absent" };

/** What `getEntry` returns for a fresh value. */
export interface EntryView {
  readonly value: unknown;
  /** ms until the value stops being fresh; 0 when it never expires. */
  readonly ttlRemainingMs: number;
}

/** What `wrap` returns, and what it did with the loader. */
export interface WrapOutcome {
  readonly value: unknown;
  /**
   * "not-called": a fresh value was there. "called": a miss; the loader's
   * value was returned and stored. "refresh": a stale value was returned and
   * one background refresh stores the loader's value (the model applies it at
   * once; the harness waits for it to land before the next command).
   */
  readonly loader: "not-called" | "called" | "refresh";
}

/** Options of `wrap` that the model knows. */
export interface WrapModelOptions {
  ttl?: number | undefined;
  /** ms a value stays readable by `wrap` (stale) after its TTL; ignored when the TTL is 0. */
  grace?: number | undefined;
  /**
   * Eager refresh (a fraction of `ttl`, which it needs): a fresh value with at
   * most round(ttl × (1 − eagerRefresh)) ms left is returned while one
   * background refresh stores the loader's value ("refresh").
   */
  eagerRefresh?: number | undefined;
  /** What the loader said through its context: `ttl`/`grace` replace the options for its value; `skip` returns it uncached. */
  loaderContext?: { ttl?: number; grace?: number; skip?: boolean } | undefined;
}

/** Limits and clock of a {@link ReferenceCache}. */
export interface ReferenceCacheOptions {
  /** The server's max-key-bytes (UTF-8 bytes). */
  maxKeyBytes: number;
  /** The clock the service under test also runs on. */
  now: () => number;
}

/** The reference model of one cache service (all its namespaces). */
export class ReferenceCache {
  readonly #namespaces = new Map<string, Map<string, ModelEntry>>();
  readonly #maxKeyBytes: number;
  readonly #now: () => number;

  constructor(options: ReferenceCacheOptions) {
    this.#maxKeyBytes = options.maxKeyBytes;
    this.#now = options.now;
  }

  /** The value if fresh, else undefined (a stored undefined reads undefined too). */
  get(namespace: string, key: string): unknown {
    const found = this.lookup(namespace, key);
    return found.state === "fresh" ? found.entry.value : undefined;
  }

  /** The fresh value with the ms until it stops being fresh (0 = never), or undefined. */
  getEntry(namespace: string, key: string): EntryView | undefined {
    const found = this.lookup(namespace, key);
    if (found.state !== "fresh") return undefined;
    const { value, freshUntil } = found.entry;
    return { value, ttlRemainingMs: freshUntil === Infinity ? 0 : freshUntil - this.#now() };
  }

  /** The distinct keys found fresh, with their values (first-asked order). */
  getMany(namespace: string, keys: readonly string[]): Map<string, unknown> {
    const ns = this.#checkKeys(namespace, keys);
    const result = new Map<string, unknown>();
    for (const key of keys) {
      const found = this.#state(ns, key);
      if (found.state === "fresh") result.set(key, found.entry.value);
    }
    return result;
  }

  /** Every distinct key once: its fresh value, or undefined. */
  streamGet(namespace: string, keys: readonly string[]): Map<string, unknown> {
    const ns = this.#checkKeys(namespace, keys);
    const result = new Map<string, unknown>();
    for (const key of keys) {
      const found = this.#state(ns, key);
      result.set(key, found.state === "fresh" ? found.entry.value : undefined);
    }
    return result;
  }

  /** True iff the key holds a fresh value (a stored undefined or null counts). */
  has(namespace: string, key: string): boolean {
    return this.lookup(namespace, key).state === "fresh";
  }

  /** Stores `value`; `ttl` 0 or absent = never expires. */
  set(namespace: string, key: string, value: unknown, ttl?: number, tags?: readonly string[]): void {
    this.setMany(namespace, [[key, value]], ttl, tags);
  }

  /** Stores every entry with one TTL and the same tags, in order: a key given twice keeps the last value. */
  setMany(namespace: string, entries: readonly (readonly [string, unknown])[], ttl?: number, tags?: readonly string[]): void {
    const ns = this.#checkKeys(namespace, entries.map(([key]) => key));
    const ttlMs = resolveTtl(ttl);
    const distinct = resolveTags(tags, MAX_TAGS_PER_ENTRY);
    for (const [key, value] of entries) this.#store(ns, key, value, ttlMs, 0, distinct);
  }

  /** Like {@link setMany}; returns how many entries were sent. */
  streamSet(namespace: string, entries: readonly (readonly [string, unknown])[], ttl?: number, tags?: readonly string[]): number {
    this.setMany(namespace, entries, ttl, tags);
    return entries.length;
  }

  /** Hides every value of the namespace written with any of `tags` (1 to 64 of them). */
  invalidateTags(namespace: string, tags: readonly string[]): void {
    const ns = resolveNamespace(namespace);
    const named = resolveTags(tags, MAX_TAGS_PER_INVALIDATION);
    if (named.length === 0) throw new InvalidArgument("invalidateTags needs at least one tag");
    const entries = this.#namespaces.get(ns);
    if (entries === undefined) return;
    for (const [key, entry] of entries) if (!entry.hidden && entry.tags.some((tag) => named.includes(tag))) entries.set(key, { ...entry, hidden: true });
  }

  /** Removes the key (stale too); true iff it was fresh. */
  delete(namespace: string, key: string): boolean {
    return this.deleteMany(namespace, [key]) === 1;
  }

  /** Removes the keys; how many distinct keys were fresh. */
  deleteMany(namespace: string, keys: readonly string[]): number {
    const ns = this.#checkKeys(namespace, keys);
    let fresh = 0;
    for (const key of new Set(keys)) {
      if (this.#state(ns, key, true).state === "fresh") fresh++;
      this.#namespaces.get(ns)?.delete(key);
    }
    return fresh;
  }

  /** A fresh key gets a new expiry (now + ttl, 0 = never) and loses its grace: true. Otherwise false, nothing changes. */
  touch(namespace: string, key: string, ttl?: number): boolean {
    const ns = this.#checkKeys(namespace, [key]);
    const ttlMs = resolveTtl(ttl);
    const found = this.#state(ns, key, true);
    if (found.state !== "fresh") return false;
    this.#store(ns, key, found.entry.value, ttlMs, 0, found.entry.tags, found.entry.hidden);
    return true;
  }

  /** Empties one namespace. */
  clear(namespace: string): void {
    this.#namespaces.delete(resolveNamespace(namespace));
  }

  /**
   * A fresh value if there is one (loader not called; with eagerRefresh and
   * the value near its end, one background refresh stores the loader's
   * value); on a miss, the loader's value, stored with ttl and grace (or
   * what the loader's context said, or not at all when it skipped); with a
   * stale value, that value, while one background refresh stores the
   * loader's value.
   */
  wrap(namespace: string, key: string, loaderValue: unknown, options: WrapModelOptions = {}): WrapOutcome {
    const ns = this.#checkKeys(namespace, [key]);
    const ttlMs = resolveTtl(options.ttl);
    const graceMs = resolveTtl(options.grace, "grace");
    if (options.eagerRefresh !== undefined && ttlMs === 0) throw new InvalidArgument("eagerRefresh needs a ttl: it is a fraction of it");
    const found = this.#state(ns, key);
    const ctx = options.loaderContext ?? {};
    const store = () => {
      if (!ctx.skip) this.#store(ns, key, loaderValue, ctx.ttl === undefined ? ttlMs : resolveTtl(ctx.ttl), ctx.grace === undefined ? graceMs : resolveTtl(ctx.grace, "grace"));
    };
    if (found.state === "fresh") {
      const ahead = options.eagerRefresh === undefined || ttlMs === 0 ? 0 : Math.max(1, Math.round(ttlMs * (1 - options.eagerRefresh)));
      const left = found.entry.freshUntil - this.#now();
      if (ahead === 0 || found.entry.freshUntil === Infinity || left > ahead) return { value: found.entry.value, loader: "not-called" };
      store();
      return { value: found.entry.value, loader: "refresh" };
    }
    store();
    return found.state === "stale" ? { value: found.entry.value, loader: "refresh" } : { value: loaderValue, loader: "called" };
  }

  /** What a key holds now (validating namespace and key like any call). */
  lookup(namespace: string, key: string): KeyState {
    return this.#state(this.#checkKeys(namespace, [key]), key);
  }

  /**
   * The future times (after now) at which some value goes stale or goes
   * away, ascending; with `staleOnly`, only the times at which values with
   * grace go stale.
   */
  boundaries(staleOnly = false): number[] {
    const now = this.#now();
    const times = new Set<number>();
    for (const entries of this.#namespaces.values()) {
      for (const { freshUntil, goneAt } of entries.values()) {
        const candidates = staleOnly ? (goneAt > freshUntil ? [freshUntil] : []) : [freshUntil, goneAt];
        for (const t of candidates) if (t !== Infinity && t > now) times.add(t);
      }
    }
    return [...times].sort((a, b) => a - b);
  }

  /** Keys that hold a value (fresh or stale, hidden too) in a namespace. */
  keys(namespace: string): string[] {
    const ns = resolveNamespace(namespace);
    return [...(this.#namespaces.get(ns)?.keys() ?? [])].filter((key) => this.#state(ns, key, true).state !== "absent");
  }

  /** A copy with the same entries, limits and clock: a world in which the caller may change one key's state. */
  clone(): ReferenceCache {
    const copy = new ReferenceCache({ maxKeyBytes: this.#maxKeyBytes, now: this.#now });
    for (const [ns, entries] of this.#namespaces) copy.#namespaces.set(ns, new Map(entries));
    return copy;
  }

  /** The entry a key holds now (fresh or stale, hidden too), or undefined; the namespace is resolved, the key not checked. */
  peek(namespace: string, key: string): ModelEntry | undefined {
    const found = this.#state(resolveNamespace(namespace), key, true);
    return found.state === "absent" ? undefined : found.entry;
  }

  /**
   * Makes the key hold `entry` (undefined: nothing), as {@link peek} gave it:
   * for callers that track several states a key may be in (possible-states.ts).
   */
  put(namespace: string, key: string, entry: ModelEntry | undefined): void {
    const ns = resolveNamespace(namespace);
    let entries = this.#namespaces.get(ns);
    if (entry === undefined) {
      entries?.delete(key);
      return;
    }
    if (entries === undefined) this.#namespaces.set(ns, (entries = new Map()));
    entries.set(key, entry);
  }

  #checkKeys(namespace: string, keys: readonly string[]): string {
    const ns = resolveNamespace(namespace);
    for (const key of keys) checkKey(key, this.#maxKeyBytes);
    return ns;
  }

  /** What a key holds for reads; with `evenHidden`, by its times alone (for delete and touch). */
  #state(ns: string, key: string, evenHidden = false): KeyState {
    const entry = this.#namespaces.get(ns)?.get(key);
    const now = this.#now();
    if (entry === undefined || now >= entry.goneAt || (entry.hidden && !evenHidden)) return { state: "absent" };
    return now < entry.freshUntil ? { state: "fresh", entry } : { state: "stale", entry };
  }

  #store(ns: string, key: string, value: unknown, ttlMs: number, graceMs: number, tags: readonly string[] = [], hidden = false): void {
    let entries = this.#namespaces.get(ns);
    if (entries === undefined) this.#namespaces.set(ns, (entries = new Map()));
    const now = this.#now();
    const entry: ModelEntry =
      ttlMs === 0 ? { value, freshUntil: Infinity, goneAt: Infinity, tags, hidden } : { value, freshUntil: now + ttlMs, goneAt: now + ttlMs + graceMs, tags, hidden };
    entries.set(key, entry);
  }
}

/** True when `err` is the model's refusal (INVALID_ARGUMENT). */
export function isInvalidArgument(err: unknown): err is InvalidArgument {
  return err instanceof InvalidArgument;
}
