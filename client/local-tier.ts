import { systemClock, type Clock } from "../core/clock.js";
import { MemoryTier, type EvictionPolicyName } from "../core/memory-tier.js";

/** Options of the client's local memory tier. */
export interface LocalTierOptions {
  /** Most entries per namespace. @default 10000 */
  maxEntries?: number;
  /** Most bytes per namespace (serialized size plus overhead). @default 64 MiB */
  maxBytes?: number;
  /** Eviction policy. @default "lru" */
  policy?: EvictionPolicyName;
  /** Longest a value is kept locally, in ms; never longer than the server's TTL. @default 60000 */
  maxTtlMs?: number;
  /** Namespaces to cache locally; all namespaces the client uses when omitted. */
  namespaces?: readonly string[];
  /**
   * When the service is unavailable, serve what the local tier still holds,
   * even if it may be stale (reads only). @default false
   */
  serveStaleWhenUnavailable?: boolean;
  /** Clock (tests). @default Date.now */
  clock?: Clock;
}

/** What {@link LocalTier.value} returns for a key it does not hold. */
export const LOCAL_MISS: unique symbol = Symbol("local miss");

interface LocalEntry {
  value: unknown;
  size: number;
}

/**
 * The client's local memory tier: core's MemoryTier per namespace, holding
 * decoded values. Values are shared between callers: treat them as read-only.
 */
export class LocalTier {
  readonly #options: LocalTierOptions;
  readonly #tiers = new Map<string, MemoryTier<LocalEntry>>();
  readonly #clock: Clock;
  readonly #only: ReadonlySet<string> | undefined;

  constructor(options: LocalTierOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#only = options.namespaces ? new Set(options.namespaces) : undefined;
  }

  /** True when `namespace` is cached locally. */
  covers(namespace: string): boolean {
    return this.#only === undefined || this.#only.has(namespace);
  }

  get serveStaleWhenUnavailable(): boolean {
    return this.#options.serveStaleWhenUnavailable ?? false;
  }

  #tier(namespace: string): MemoryTier<LocalEntry> {
    let tier = this.#tiers.get(namespace);
    if (!tier) {
      tier = new MemoryTier<LocalEntry>({
        maxEntries: this.#options.maxEntries ?? 10_000,
        maxBytes: this.#options.maxBytes ?? 64 * 1024 * 1024,
        policy: this.#options.policy ?? "lru",
        clock: this.#clock,
        sizeOf: (entry) => entry.size,
      });
      this.#tiers.set(namespace, tier);
    }
    return tier;
  }

  /** The value held for `key`, or {@link LOCAL_MISS} (no allocation: the hot path of a local hit). */
  value(namespace: string, key: string): unknown {
    const entry = this.#tiers.get(namespace)?.get(key);
    return entry === undefined ? LOCAL_MISS : entry.value;
  }

  /** The entry for `key` if held and unexpired (`found` tells a stored undefined from a miss). */
  get(namespace: string, key: string): { found: boolean; value: unknown } {
    const entry = this.#tiers.get(namespace)?.get(key);
    return entry === undefined ? { found: false, value: undefined } : { found: true, value: entry.value };
  }

  /** Keeps a value for at most min(serverTtlMs, maxTtlMs); serverTtlMs 0 = the server keeps it forever. */
  set(namespace: string, key: string, value: unknown, size: number, serverTtlMs: number): void {
    const maxTtl = this.#options.maxTtlMs ?? 60_000;
    const ttl = serverTtlMs === 0 ? maxTtl : Math.min(serverTtlMs, maxTtl);
    this.#tier(namespace).set(key, { value, size }, this.#clock() + ttl);
  }

  delete(namespace: string, key: string): void {
    this.#tiers.get(namespace)?.delete(key);
  }

  /** Drops everything held for `namespace`. */
  flush(namespace: string): void {
    this.#tiers.get(namespace)?.clear();
  }

  /** Entries held for `namespace`. */
  size(namespace: string): number {
    return this.#tiers.get(namespace)?.size ?? 0;
  }
}
