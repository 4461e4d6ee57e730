import { coarseClock, type Clock } from "../core/clock.js";
import { namespaceProblem, resolveNamespace } from "../core/key-rules.js";
import { MemoryTier, type EvictionPolicyName } from "../core/memory-tier.js";
import { withoutSharedBuffer } from "./owned-bytes.js";

/** Names one copy the local tier kept (see {@link LocalTier.dropUnless}), whatever its value. */
export type CopyToken = object;

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
  /** Namespaces to cache locally ("" = "default"); all namespaces the client uses when omitted. */
  namespaces?: readonly string[];
  /**
   * When the service is unavailable, serve what the local tier still holds,
   * even if it may be stale (reads only). @default false
   */
  serveStaleWhenUnavailable?: boolean;
  /** Clock (tests). @default Date.now, read at most once per millisecond (copies expire a millisecond early to make up for it) */
  clock?: Clock;
}

/** The local tier reads the time once per this many ms at most (a clock read per hit costs as much as the hit). */
const CLOCK_RESOLUTION_MS = 1;

/** What {@link LocalTier.value} returns for a key it does not hold. */
export const LOCAL_MISS: unique symbol = Symbol("local miss");

/** A value read from the server, with what the server said about it. */
export interface ServerCopy {
  value: unknown;
  contentType: string;
  /** Serialized size, in bytes. */
  size: number;
  /** ms until the server stops serving it as fresh (its TTL, or until stale with grace); 0 = never. */
  freshMs: number;
  /** ms until the server drops it (end of grace, if any); 0 = never. */
  ttlRemainingMs: number;
}

/** A local copy and its metadata as of now. */
export interface LocalCopy {
  value: unknown;
  contentType: string;
  /** ms until the server's copy expires, as of now (at least 1); 0 = the server keeps it forever. */
  ttlRemainingMs: number;
}

interface LocalEntry {
  value: unknown;
  contentType: string;
  size: number;
  /** When the server's copy expires, on this tier's clock; 0 = never. */
  serverExpiresAt: number;
}

/**
 * The client's local memory tier: core's MemoryTier per namespace, holding
 * decoded values. Values are shared between callers: treat them as read-only.
 */
export class LocalTier {
  readonly #options: LocalTierOptions;
  readonly #tiers = new Map<string, MemoryTier<LocalEntry>>();
  readonly #clock: Clock;
  /** How much earlier than the server's expiry a copy expires: the coarse clock's lag. */
  readonly #earlyMs: number;
  /** The namespace {@link value} read last, and its tier. */
  #lastNamespace: string | undefined;
  #lastTier: MemoryTier<LocalEntry> | undefined;
  readonly #only: ReadonlySet<string> | undefined;

  constructor(options: LocalTierOptions) {
    this.#options = options;
    this.#clock = options.clock ?? coarseClock(undefined, CLOCK_RESOLUTION_MS);
    this.#earlyMs = options.clock === undefined ? CLOCK_RESOLUTION_MS : 0;
    const problem = options.namespaces?.map(namespaceProblem).find((p) => p !== undefined);
    if (problem !== undefined) throw new TypeError(`localTier.namespaces: ${problem}`);
    this.#only = options.namespaces ? new Set(options.namespaces.map(resolveNamespace)) : undefined;
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
    const tier = namespace === this.#lastNamespace ? this.#lastTier : this.#tiers.get(namespace);
    if (tier === undefined) return LOCAL_MISS;
    this.#lastNamespace = namespace;
    this.#lastTier = tier;
    const entry = tier.get(key);
    return entry === undefined ? LOCAL_MISS : entry.value;
  }

  /** The copy held for `key` if unexpired, with its metadata as of now. */
  get(namespace: string, key: string): LocalCopy | undefined {
    const entry = this.#tiers.get(namespace)?.get(key);
    if (entry === undefined) return undefined;
    const ttlRemainingMs = entry.serverExpiresAt === 0 ? 0 : Math.max(1, entry.serverExpiresAt - this.#clock());
    return { value: entry.value, contentType: entry.contentType, ttlRemainingMs };
  }

  /**
   * Keeps a copy for at most min(freshMs, maxTtlMs); freshMs 0 = the server
   * keeps it fresh forever. Returns what {@link dropUnless} knows this copy
   * by, or undefined when nothing was kept.
   */
  set(namespace: string, key: string, copy: ServerCopy): CopyToken | undefined {
    const maxTtl = this.#options.maxTtlMs ?? 60_000;
    const ttl = copy.freshMs === 0 ? maxTtl : Math.min(copy.freshMs, maxTtl);
    const now = this.#clock();
    const entry: LocalEntry = {
      value: withoutSharedBuffer(copy.value),
      contentType: copy.contentType,
      size: copy.size,
      serverExpiresAt: copy.ttlRemainingMs === 0 ? 0 : now + copy.ttlRemainingMs,
    };
    if (ttl <= this.#earlyMs) {
      this.delete(namespace, key);
      return undefined;
    }
    return this.#tier(namespace).set(key, entry, now + ttl - this.#earlyMs) ? entry : undefined;
  }

  /**
   * Makes the copy `token` names expire within `freshMs` from now, if it is
   * still held and would last longer (never lengthened, so `maxTtlMs` still
   * counts from when it was kept). False when it is no longer held.
   */
  shorten(namespace: string, key: string, token: CopyToken | undefined, freshMs: number): boolean {
    const tier = this.#tiers.get(namespace);
    if (token === undefined || tier === undefined || tier.peek(key) !== token) return false;
    const entry = token as LocalEntry;
    const now = this.#clock();
    const end = now + freshMs;
    if (entry.serverExpiresAt === 0 || end < entry.serverExpiresAt) entry.serverExpiresAt = end;
    const localEnd = end - this.#earlyMs;
    if (localEnd <= now) {
      tier.delete(key);
      return false;
    }
    const current = tier.peekExpiry(key) ?? 0;
    if (current === 0 || localEnd < current) tier.touch(key, localEnd);
    return true;
  }

  /** Drops the copy of `key` unless it is the very copy that `set` returned `token` for. */
  dropUnless(namespace: string, key: string, token: CopyToken | undefined): void {
    const tier = this.#tiers.get(namespace);
    if (tier !== undefined && (token === undefined || tier.peek(key) !== token)) tier.delete(key);
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
