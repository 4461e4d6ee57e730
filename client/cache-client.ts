import { readFileSync } from "node:fs";
import { credentials as grpcCredentials, Metadata, type ChannelCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { isIP } from "node:net";
import { createClient, type CallOptions as RpcCallOptions, type ServiceClient } from "../core/grpc-adapter.js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../core/message-limits.js";
import { RpcError, Status } from "../core/rpc-error.js";
import type { TierCounters } from "../core/tier-counters.js";
import { CacheService, Tier, type FoundEntry } from "../gen/tiercache/v1/cache_pb.js";
import { keyFromArguments } from "./cache-key.js";
import { CoherenceWatcher, type CoherenceOptions, type ReadMark } from "./coherence.js";
import { LOCAL_MISS, LocalTier, type LocalTierOptions } from "./local-tier.js";
import { jsonSerializer, type Serializer } from "./serializer.js";
import { Wrapper, type WrapOptions } from "./wrap.js";

/** Options of a {@link CacheClient}. */
export interface CacheClientOptions {
  /** The server, as `host:port`. */
  address?: string;
  /** Several servers, as IP `host:port`s, balanced round-robin; instead of `address`. */
  addresses?: readonly string[];
  /** Keep values in a local memory tier, kept coherent by the Watch stream. Off by default. */
  localTier?: LocalTierOptions | boolean;
  /** Tuning of the Watch stream behind the local tier. */
  coherence?: CoherenceOptions;
  /** Retry reads (Get, Has, GetMany, Stats) that fail UNAVAILABLE, up to 3 attempts. @default true */
  retryReads?: boolean;
  /** Namespace of calls that name none. @default "default" */
  namespace?: string;
  /** Encodes values to bytes and back. @default jsonSerializer */
  serializer?: Serializer;
  /** Deadline of each call, in ms. @default 5000 */
  timeoutMs?: number;
  /** Items per message in streaming bulk calls. @default 500 */
  streamBatchSize?: number;
  /**
   * Largest message the client accepts from the server, in bytes. Raise it
   * when the server runs with a larger `--max-message-bytes`.
   * @default 16 MiB (the server's default `--max-message-bytes`)
   */
  maxReceiveMessageBytes?: number;
  /** TLS to the server: CA to trust, and a client certificate for mutual TLS. Paths or PEM contents. */
  tls?: TlsOptions;
  /** Channel credentials; overrides `tls`. @default insecure (plaintext) unless `tls` is given */
  credentials?: ChannelCredentials;
  /** Access token, sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** grpc-js channel options. */
  channelOptions?: ChannelOptions;
}

/** TLS settings of a client. Each field is a file path or the PEM text itself. */
export interface TlsOptions {
  /** CA certificate(s) that signed the server's certificate. @default the system's roots */
  ca?: string | Buffer;
  /** Client certificate, for mutual TLS. */
  cert?: string | Buffer;
  /** Client private key, for mutual TLS. */
  key?: string | Buffer;
}

function pem(source: string | Buffer | undefined): Buffer | null {
  if (source === undefined) return null;
  if (Buffer.isBuffer(source)) return source;
  return source.includes("-----BEGIN") ? Buffer.from(source) : readFileSync(source);
}

function channelCredentials(options: CacheClientOptions): ChannelCredentials {
  if (options.credentials) return options.credentials;
  if (options.tls) return grpcCredentials.createSsl(pem(options.tls.ca), pem(options.tls.key), pem(options.tls.cert));
  return grpcCredentials.createInsecure();
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}

function target(options: CacheClientOptions): string {
  if (options.addresses && options.addresses.length > 0) {
    if (options.addresses.length === 1) return options.addresses[0]!;
    const hosts = options.addresses.map((address) => {
      const host = address.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
      if (isIP(host) === 0) throw new TypeError(`addresses must be IP host:port pairs (got ${JSON.stringify(address)}); for DNS names, pass one name as address`);
      return { address, family: isIP(host) };
    });
    const family = hosts[0]!.family;
    if (hosts.some((h) => h.family !== family)) throw new TypeError("addresses must all be IPv4 or all IPv6");
    return `${family === 4 ? "ipv4" : "ipv6"}:${options.addresses.join(",")}`;
  }
  if (!options.address) throw new TypeError("CacheClient needs an address (host:port) or addresses");
  return options.address;
}

const READ_METHODS = ["Get", "Has", "GetMany", "Stats"];

function serviceConfig(retryReads: boolean, balanced: boolean): string {
  return JSON.stringify({
    loadBalancingConfig: balanced ? [{ round_robin: {} }] : [{ pick_first: {} }],
    methodConfig: retryReads
      ? [
          {
            name: READ_METHODS.map((method) => ({ service: CacheService.typeName, method })),
            retryPolicy: { maxAttempts: 3, initialBackoff: "0.05s", maxBackoff: "0.5s", backoffMultiplier: 2, retryableStatusCodes: ["UNAVAILABLE"] },
          },
        ]
      : [],
  });
}

/** Options every call takes. */
export interface CallOptions {
  /** Namespace of this call; defaults to the client's. */
  namespace?: string;
  /** Deadline of this call, in ms; defaults to the client's. */
  timeoutMs?: number;
  /** Cancels the call when aborted. */
  signal?: AbortSignal;
}

/** Options of writes. */
export interface SetOptions extends CallOptions {
  /** Time to live in ms; 0 or absent = the namespace's default (no expiry unless configured). */
  ttl?: number;
}

/** Options of streaming bulk calls. */
export interface StreamOptions extends SetOptions {
  /** Items per stream message; defaults to the client's `streamBatchSize`. */
  batchSize?: number;
}

/** Options of `cached` (the method decorator). */
export interface CachedOptions<A extends unknown[]> extends WrapOptions {
  /** Derives the key from the arguments; default: `<Class>.<method>:` + a stable encoding of the arguments. */
  key?: (...args: A) => string;
}

/** Where a value was found: a server tier, or "client" for the client's own local tier. */
export type TierName = "client" | "memory" | "local" | "redis" | "unknown";

/** A value read with its metadata. */
export interface CacheEntry<T> {
  value: T;
  contentType: string;
  /** ms until it expires; 0 = never. */
  ttlRemainingMs: number;
  /** The server tier that answered. */
  tier: TierName;
}

/** Counters of one tier of one namespace (see the Stats RPC). */
export interface TierStats extends TierCounters {
  tier: TierName;
}

/** Counters of one namespace. */
export interface NamespaceStats {
  namespace: string;
  tiers: TierStats[];
  bytesIn: number;
  bytesStored: number;
  compressionRatio: number;
  /** Writes kept in server memory only because the durable tier was down. */
  degradedWrites: number;
}

/** Entries to write: a record, a Map, or any iterable of pairs. */
export type EntriesInput = Record<string, unknown> | ReadonlyMap<string, unknown> | Iterable<readonly [string, unknown]>;

const TIER_NAMES: Record<Tier, TierName> = {
  [Tier.UNSPECIFIED]: "unknown",
  [Tier.MEMORY]: "memory",
  [Tier.LOCAL]: "local",
  [Tier.REDIS]: "redis",
};

function entriesOf(input: EntriesInput): Iterable<readonly [string, unknown]> {
  if (input instanceof Map) return input.entries();
  if (Symbol.iterator in input) return input as Iterable<readonly [string, unknown]>;
  return Object.entries(input);
}

async function* batches<T>(items: AsyncIterable<T> | Iterable<T>, size: number): AsyncIterable<T[]> {
  let batch: T[] = [];
  for await (const item of items) {
    batch.push(item);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/**
 * The typed tiercache client.
 *
 * ```ts
 * await using cache = new CacheClient({ address: "127.0.0.1:50051" });
 * await cache.set("user:1", { name: "Ada" }, { ttl: 60_000 });
 * const user = await cache.get<{ name: string }>("user:1");
 * ```
 *
 * Every method rejects with an `RpcError` whose `code` is the gRPC status.
 */
export class CacheClient implements AsyncDisposable {
  readonly #rpc: ServiceClient<typeof CacheService>;
  readonly #namespace: string;
  readonly #serializer: Serializer;
  readonly #streamBatchSize: number;
  readonly #token: string | undefined;
  readonly #local: LocalTier | undefined;
  readonly #watcher: CoherenceWatcher | undefined;
  readonly #wrapper: Wrapper;

  constructor(options: CacheClientOptions) {
    this.#namespace = options.namespace ?? "default";
    this.#serializer = options.serializer ?? jsonSerializer;
    this.#streamBatchSize = options.streamBatchSize ?? 500;
    const maxReceiveMessageBytes = positiveInteger("maxReceiveMessageBytes", options.maxReceiveMessageBytes, DEFAULT_MAX_MESSAGE_BYTES);
    this.#token = options.token;
    this.#rpc = createClient(CacheService, target(options), channelCredentials(options), {
      defaultTimeoutMs: options.timeoutMs ?? 5000,
      channelOptions: {
        "grpc.service_config": serviceConfig(options.retryReads ?? true, (options.addresses?.length ?? 0) > 1),
        "grpc.enable_retries": 1,
        "grpc.keepalive_time_ms": 30_000,
        "grpc.keepalive_timeout_ms": 10_000,
        "grpc.initial_reconnect_backoff_ms": 200,
        "grpc.max_reconnect_backoff_ms": 5_000,
        "grpc.max_receive_message_length": maxReceiveMessageBytes,
        ...options.channelOptions,
      },
    });
    if (options.localTier) {
      const local = new LocalTier(options.localTier === true ? {} : options.localTier);
      this.#local = local;
      this.#watcher = new CoherenceWatcher(
        this.#rpc,
        { invalidate: (ns, keys) => keys.forEach((key) => local.delete(ns, key)), flush: (ns) => local.flush(ns) },
        options.coherence,
      );
    }
    this.#wrapper = new Wrapper({
      getOrLease: async (namespace, key, leaseMs, waitMs) => {
        const epoch = this.#watcher?.mark(namespace);
        const res = await this.#rpc.getOrLease({ namespace, key, leaseMs, waitMs }, this.#call(waitMs > 0 ? { timeoutMs: waitMs + 5000 } : undefined));
        const value = res.found ? this.#serializer.decode(res.value, res.contentType) : undefined;
        if (res.found && !res.stale) this.#remember(namespace, key, value, res.value.byteLength, Number(res.freshRemainingMs), epoch);
        return { found: res.found, value, stale: res.stale, leaseToken: res.leaseToken };
      },
      store: async (namespace, key, value, { ttl, grace, leaseToken }) => {
        const { bytes, contentType } = this.#serializer.encode(value);
        this.#local?.delete(namespace, key);
        await this.#rpc.set({ namespace, key, value: bytes, contentType, ttlMs: BigInt(ttl), graceMs: BigInt(grace), leaseToken }, this.#call(undefined));
      },
      releaseLease: async (namespace, key, leaseToken) => {
        await this.#rpc.releaseLease({ namespace, key, leaseToken }, this.#call(undefined));
      },
      local: (namespace, key) => this.#localHit(namespace, key),
    });
  }

  /** A coherent local copy, when the local tier holds one for this namespace. */
  #localHit(namespace: string, key: string): { found: boolean; value: unknown } {
    const local = this.#local;
    if (!local || !local.covers(namespace)) return { found: false, value: undefined };
    this.#watcher!.watch(namespace);
    if (!this.#watcher!.isCoherent(namespace)) return { found: false, value: undefined };
    return local.get(namespace, key);
  }

  /**
   * Keeps a value read from the server locally for at most `freshMs` (its time
   * until expiry, or until stale when it has grace), unless the namespace
   * changed (or went incoherent) since the read began.
   */
  #remember(namespace: string, key: string, value: unknown, size: number, freshMs: number, mark: ReadMark | undefined): void {
    const local = this.#local;
    if (!local || !local.covers(namespace) || mark === undefined) return;
    if (!this.#watcher!.isCoherent(namespace) || !this.#watcher!.unchangedSince(namespace, key, mark)) return;
    local.set(namespace, key, value, size, freshMs);
  }

  #forgetLocal(namespace: string, keys: Iterable<string>): void {
    if (!this.#local) return;
    for (const key of keys) this.#local.delete(namespace, key);
  }

  #ns(options: CallOptions | undefined): string {
    return options?.namespace ?? this.#namespace;
  }

  #call(options: CallOptions | undefined): RpcCallOptions {
    const call: RpcCallOptions = {};
    if (this.#token !== undefined) {
      const metadata = new Metadata();
      metadata.set("authorization", `Bearer ${this.#token}`);
      call.metadata = metadata;
    }
    if (options?.timeoutMs !== undefined) call.timeoutMs = options.timeoutMs;
    if (options?.signal !== undefined) call.signal = options.signal;
    return call;
  }

  /** Streams run as long as they need unless the call sets `timeoutMs`. */
  #streamCall(options: CallOptions | undefined): RpcCallOptions {
    const call = this.#call(options);
    if (options?.timeoutMs === undefined) call.deadline = Infinity;
    return call;
  }

  #entry<T>(found: Pick<FoundEntry, "value" | "contentType" | "ttlRemainingMs" | "tier">): CacheEntry<T> {
    return {
      value: this.#serializer.decode(found.value, found.contentType) as T,
      contentType: found.contentType,
      ttlRemainingMs: Number(found.ttlRemainingMs),
      tier: TIER_NAMES[found.tier] ?? "unknown",
    };
  }

  /** The value stored under `key`, or `undefined` on a miss (or when `undefined` itself was stored). */
  async get<T = unknown>(key: string, options?: CallOptions): Promise<T | undefined> {
    if (this.#local) {
      const value = this.#localValue(this.#ns(options), key);
      if (value !== LOCAL_MISS) return value as T;
    }
    return (await this.getEntry<T>(key, options))?.value;
  }

  /**
   * The value and its metadata, or `undefined` on a miss; tells a stored
   * `undefined` apart from a miss. A value past its TTL but within grace is
   * a miss here (use `wrap` to get stale values). Served from the local tier
   * (tier "client") when it holds a coherent copy.
   */
  async getEntry<T = unknown>(key: string, options?: CallOptions): Promise<CacheEntry<T> | undefined> {
    const namespace = this.#ns(options);
    const local = this.#localHit(namespace, key);
    if (local.found) return { value: local.value as T, contentType: "", ttlRemainingMs: 0, tier: "client" };
    const epoch = this.#watcher?.mark(namespace);
    let res;
    try {
      res = await this.#rpc.get({ namespace, key }, this.#call(options));
    } catch (err) {
      if (this.#local?.serveStaleWhenUnavailable && RpcError.is(err, Status.UNAVAILABLE)) {
        const held = this.#local.get(namespace, key);
        if (held.found) return { value: held.value as T, contentType: "", ttlRemainingMs: 0, tier: "client" };
      }
      throw err;
    }
    if (!res.found || res.stale) return undefined;
    const entry = this.#entry<T>(res);
    this.#remember(namespace, key, entry.value, res.value.byteLength, Number(res.freshRemainingMs), epoch);
    return entry;
  }

  /**
   * The local tier's coherent copy of `key`, synchronously, or `undefined`
   * (not held, not coherent now, or no local tier). Never calls the server.
   */
  getLocal<T = unknown>(key: string, options?: Pick<CallOptions, "namespace">): T | undefined {
    const value = this.#localValue(this.#ns(options), key);
    return (value === LOCAL_MISS ? undefined : value) as T | undefined;
  }

  /** The coherent local copy, or LOCAL_MISS. */
  #localValue(namespace: string, key: string): unknown {
    const local = this.#local;
    if (!local || !this.#watcher!.isCoherent(namespace)) {
      if (local?.covers(namespace)) this.#watcher!.watch(namespace);
      return LOCAL_MISS;
    }
    return local.value(namespace, key);
  }

  /**
   * Stores `value` under `key`; resolves once every server tier has it
   * (`degraded`: the server had no durable tier to write to and runs with
   * degraded writes on, so the value is in its memory only).
   */
  async set(key: string, value: unknown, options?: SetOptions): Promise<{ degraded: boolean }> {
    const { bytes, contentType } = this.#serializer.encode(value);
    const namespace = this.#ns(options);
    this.#forgetLocal(namespace, [key]);
    const res = await this.#rpc.set({ namespace, key, value: bytes, contentType, ttlMs: BigInt(options?.ttl ?? 0) }, this.#call(options));
    return { degraded: res.degraded };
  }

  /** Removes `key`; true when it held a value. */
  async delete(key: string, options?: CallOptions): Promise<boolean> {
    this.#forgetLocal(this.#ns(options), [key]);
    return (await this.#rpc.delete({ namespace: this.#ns(options), key }, this.#call(options))).deleted;
  }

  /** True when `key` holds an unexpired value. */
  async has(key: string, options?: CallOptions): Promise<boolean> {
    return (await this.#rpc.has({ namespace: this.#ns(options), key }, this.#call(options))).found;
  }

  /** Gives `key` a new TTL (`options.ttl`, counted from now); false when it holds no value. */
  async touch(key: string, options: SetOptions): Promise<boolean> {
    this.#forgetLocal(this.#ns(options), [key]);
    return (await this.#rpc.touch({ namespace: this.#ns(options), key, ttlMs: BigInt(options.ttl ?? 0) }, this.#call(options))).found;
  }

  /** The values of the keys found, keyed by key; missing keys are absent from the Map. */
  async getMany<T = unknown>(keys: Iterable<string>, options?: CallOptions): Promise<Map<string, T>> {
    const namespace = this.#ns(options);
    const result = new Map<string, T>();
    const ask: string[] = [];
    for (const key of keys) {
      const local = this.#localHit(namespace, key);
      if (local.found) result.set(key, local.value as T);
      else ask.push(key);
    }
    if (ask.length === 0) return result;
    const epoch = this.#watcher?.mark(namespace);
    const res = await this.#rpc.getMany({ namespace, keys: ask }, this.#call(options));
    for (const found of res.entries) {
      if (found.stale) continue;
      const entry = this.#entry<T>(found);
      this.#remember(namespace, found.key, entry.value, found.value.byteLength, Number(found.freshRemainingMs), epoch);
      result.set(found.key, entry.value);
    }
    return result;
  }

  #toEntries(input: Iterable<readonly [string, unknown]>, ttlMs: bigint) {
    return Array.from(input, ([key, value]) => {
      const { bytes, contentType } = this.#serializer.encode(value);
      return { key, value: bytes, contentType, ttlMs };
    });
  }

  /** Stores several values in one call; all share `options.ttl`. */
  async setMany(entries: EntriesInput, options?: SetOptions): Promise<{ degraded: boolean }> {
    const list = this.#toEntries(entriesOf(entries), BigInt(options?.ttl ?? 0));
    this.#forgetLocal(this.#ns(options), list.map((e) => e.key));
    const res = await this.#rpc.setMany({ namespace: this.#ns(options), entries: list }, this.#call(options));
    return { degraded: res.degraded };
  }

  /** Removes several keys; how many held a value. */
  async deleteMany(keys: Iterable<string>, options?: CallOptions): Promise<number> {
    const list = [...keys];
    this.#forgetLocal(this.#ns(options), list);
    return (await this.#rpc.deleteMany({ namespace: this.#ns(options), keys: list }, this.#call(options))).deleted;
  }

  /** Removes every key of the namespace (the client's, or `options.namespace`). */
  async clear(options?: CallOptions): Promise<void> {
    this.#local?.flush(this.#ns(options));
    await this.#rpc.clear({ namespace: this.#ns(options) }, this.#call(options));
  }

  /** Counters of `options.namespace`, or of every namespace when none is given. */
  async stats(options?: CallOptions): Promise<NamespaceStats[]> {
    const res = await this.#rpc.stats({ namespace: options?.namespace ?? "" }, this.#call(options));
    return res.namespaces.map((ns) => ({
      namespace: ns.namespace,
      bytesIn: Number(ns.bytesIn),
      bytesStored: Number(ns.bytesStored),
      compressionRatio: ns.compressionRatio,
      degradedWrites: Number(ns.degradedWrites),
      tiers: ns.tiers.map((t) => ({
        tier: TIER_NAMES[t.tier] ?? "unknown",
        hits: Number(t.hits),
        misses: Number(t.misses),
        hitRate: t.hitRate,
        sets: Number(t.sets),
        deletes: Number(t.deletes),
        entries: Number(t.entries),
        bytes: Number(t.bytes),
        evictionsSize: Number(t.evictionsSize),
        evictionsCount: Number(t.evictionsCount),
        expirations: Number(t.expirations),
      })),
    }));
  }

  /**
   * Reads many keys over one stream, in batches of `options.batchSize`;
   * yields `[key, value]` for every key, with `undefined` for a miss. Keys
   * are read from `keys` only as fast as answers are consumed.
   */
  async *streamGet<T = unknown>(keys: AsyncIterable<string> | Iterable<string>, options?: StreamOptions): AsyncIterable<[string, T | undefined]> {
    const namespace = this.#ns(options);
    const requests = (async function* (size: number) {
      for await (const batch of batches(keys, size)) yield { namespace, keys: batch };
    })(options?.batchSize ?? this.#streamBatchSize);
    for await (const res of this.#rpc.streamGet(requests, this.#streamCall(options))) {
      for (const entry of res.entries) yield [entry.key, this.#entry<T>(entry).value];
      for (const key of res.missing) yield [key, undefined];
    }
  }

  /** Writes many entries over one stream, in batches of `options.batchSize`; resolves with how many were stored. */
  async streamSet(entries: AsyncIterable<readonly [string, unknown]> | Iterable<readonly [string, unknown]>, options?: StreamOptions): Promise<number> {
    const namespace = this.#ns(options);
    const ttlMs = BigInt(options?.ttl ?? 0);
    const toEntries = (batch: (readonly [string, unknown])[]) => this.#toEntries(batch, ttlMs);
    const requests = (async function* (size: number) {
      for await (const batch of batches(entries, size)) yield { namespace, entries: toEntries(batch) };
    })(options?.batchSize ?? this.#streamBatchSize);
    return Number((await this.#rpc.streamSet(requests, this.#streamCall(options))).stored);
  }

  /**
   * The cached value of `key`, or else the result of `loader`, stored with
   * `options.ttl`. Concurrent callers of one key in this client share one
   * loader run; across clients a server lease lets one compute while the
   * others wait up to `leaseWaitMs`. With `grace`, a value past its TTL is
   * returned at once while one caller refreshes it in the background, and
   * keeps being served (within grace) if the loader fails. A loader's
   * `undefined` is cached only with `negativeTtl`. If the service is
   * unavailable, the loader's result is returned uncached.
   */
  wrap<T>(key: string, loader: () => T | Promise<T>, options: WrapOptions = {}): Promise<T> {
    return this.#wrapper.wrap(this.#ns(options), key, loader, options);
  }

  /** Alias of {@link wrap}. */
  getOrSet<T>(key: string, loader: () => T | Promise<T>, options: WrapOptions = {}): Promise<T> {
    return this.wrap(key, loader, options);
  }

  /**
   * Values for many keys: reads them in one call and sends only the missing
   * keys to one `loader` call (which returns a Map or a record of what it
   * found); stores what it returns. Keys the loader does not return are
   * absent from the result (and cached as `undefined` with `negativeTtl`).
   */
  async wrapMany<T>(
    keys: Iterable<string>,
    loader: (missing: string[]) => Promise<ReadonlyMap<string, T> | Record<string, T>> | ReadonlyMap<string, T> | Record<string, T>,
    options: WrapOptions = {},
  ): Promise<Map<string, T>> {
    const wanted = [...new Set(keys)];
    const found = await this.getMany<T>(wanted, options);
    const missing = wanted.filter((key) => !found.has(key));
    if (missing.length === 0) return found;
    const loaded = await loader(missing);
    const entries = loaded instanceof Map ? [...loaded] : Object.entries(loaded as Record<string, T>);
    const fresh = entries.filter(([key]) => missing.includes(key));
    if (fresh.length > 0) await this.setMany(new Map(fresh), options).catch(() => {});
    if (options.negativeTtl !== undefined) {
      const absent = missing.filter((key) => !fresh.some(([k]) => k === key));
      if (absent.length > 0) await this.setMany(new Map(absent.map((key) => [key, undefined])), { ...options, ttl: options.negativeTtl }).catch(() => {});
    }
    const result = new Map<string, T>();
    for (const key of wanted) {
      if (found.has(key)) result.set(key, found.get(key)!);
      const entry = fresh.find(([k]) => k === key);
      if (entry && entry[1] !== undefined) result.set(key, entry[1]);
    }
    return result;
  }

  /**
   * A method decorator (TypeScript 5 standard decorators) caching the
   * method's results through {@link wrap}:
   *
   * ```ts
   * class Users { @cache.cached({ ttl: 60_000 }) async byId(id: number) { ... } }
   * ```
   *
   * The key is `options.key(...args)` or `<Class>.<method>:<arguments>`, the
   * arguments encoded stably (see keyFromArguments).
   */
  cached<This, A extends unknown[], R>(options: CachedOptions<A> = {}) {
    const client = this;
    return function decorate(
      method: (this: This, ...args: A) => Promise<R>,
      context: ClassMethodDecoratorContext<This, (this: This, ...args: A) => Promise<R>>,
    ): (this: This, ...args: A) => Promise<R> {
      const name = String(context.name);
      return function (this: This, ...args: A): Promise<R> {
        const owner = (this as { constructor?: { name?: string } } | undefined)?.constructor?.name ?? "fn";
        const key = options.key ? options.key(...args) : keyFromArguments(`${owner}.${name}`, args);
        return client.wrap(key, () => method.apply(this, args), options);
      };
    };
  }

  /** Closes the connection; calls in flight fail with CANCELLED. */
  close(): void {
    this.#watcher?.close();
    this.#rpc.close();
  }

  /** Closes the client at the end of an `await using` block. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
