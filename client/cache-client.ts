import { readFileSync } from "node:fs";
import { credentials as grpcCredentials, Metadata, type ChannelCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { createClient, type CallOptions as RpcCallOptions, type ServiceClient } from "../core/grpc-adapter.js";
import { CacheService, Tier, type FoundEntry } from "../gen/tiercache/v1/cache_pb.js";
import { jsonSerializer, type Serializer } from "./serializer.js";

/** Options of a {@link CacheClient}. */
export interface CacheClientOptions {
  /** The server, as `host:port`. */
  address: string;
  /** Namespace of calls that name none. @default "default" */
  namespace?: string;
  /** Encodes values to bytes and back. @default jsonSerializer */
  serializer?: Serializer;
  /** Deadline of each call, in ms. @default 5000 */
  timeoutMs?: number;
  /** Items per message in streaming bulk calls. @default 500 */
  streamBatchSize?: number;
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

/** Where a value was found. */
export type TierName = "memory" | "local" | "redis" | "unknown";

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
export interface TierStats {
  tier: TierName;
  hits: number;
  misses: number;
  hitRate: number;
  sets: number;
  deletes: number;
  entries: number;
  bytes: number;
  evictionsSize: number;
  evictionsCount: number;
  expirations: number;
}

/** Counters of one namespace. */
export interface NamespaceStats {
  namespace: string;
  tiers: TierStats[];
  bytesIn: number;
  bytesStored: number;
  compressionRatio: number;
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

  constructor(options: CacheClientOptions) {
    this.#namespace = options.namespace ?? "default";
    this.#serializer = options.serializer ?? jsonSerializer;
    this.#streamBatchSize = options.streamBatchSize ?? 500;
    this.#token = options.token;
    this.#rpc = createClient(CacheService, options.address, channelCredentials(options), {
      defaultTimeoutMs: options.timeoutMs ?? 5000,
      ...(options.channelOptions && { channelOptions: options.channelOptions }),
    });
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
    return (await this.getEntry<T>(key, options))?.value;
  }

  /** The value and its metadata, or `undefined` on a miss; tells a stored `undefined` apart from a miss. */
  async getEntry<T = unknown>(key: string, options?: CallOptions): Promise<CacheEntry<T> | undefined> {
    const res = await this.#rpc.get({ namespace: this.#ns(options), key }, this.#call(options));
    return res.found ? this.#entry<T>(res) : undefined;
  }

  /** Stores `value` under `key`; resolves once every server tier has it. */
  async set(key: string, value: unknown, options?: SetOptions): Promise<void> {
    const { bytes, contentType } = this.#serializer.encode(value);
    await this.#rpc.set({ namespace: this.#ns(options), key, value: bytes, contentType, ttlMs: BigInt(options?.ttl ?? 0) }, this.#call(options));
  }

  /** Removes `key`; true when it held a value. */
  async delete(key: string, options?: CallOptions): Promise<boolean> {
    return (await this.#rpc.delete({ namespace: this.#ns(options), key }, this.#call(options))).deleted;
  }

  /** True when `key` holds an unexpired value. */
  async has(key: string, options?: CallOptions): Promise<boolean> {
    return (await this.#rpc.has({ namespace: this.#ns(options), key }, this.#call(options))).found;
  }

  /** Gives `key` a new TTL (`options.ttl`, counted from now); false when it holds no value. */
  async touch(key: string, options: SetOptions): Promise<boolean> {
    return (await this.#rpc.touch({ namespace: this.#ns(options), key, ttlMs: BigInt(options.ttl ?? 0) }, this.#call(options))).found;
  }

  /** The values of the keys found, keyed by key; missing keys are absent from the Map. */
  async getMany<T = unknown>(keys: Iterable<string>, options?: CallOptions): Promise<Map<string, T>> {
    const res = await this.#rpc.getMany({ namespace: this.#ns(options), keys: [...keys] }, this.#call(options));
    return new Map(res.entries.map((entry) => [entry.key, this.#entry<T>(entry).value]));
  }

  #toEntries(input: Iterable<readonly [string, unknown]>, ttlMs: bigint) {
    return Array.from(input, ([key, value]) => {
      const { bytes, contentType } = this.#serializer.encode(value);
      return { key, value: bytes, contentType, ttlMs };
    });
  }

  /** Stores several values in one call; all share `options.ttl`. */
  async setMany(entries: EntriesInput, options?: SetOptions): Promise<void> {
    const list = this.#toEntries(entriesOf(entries), BigInt(options?.ttl ?? 0));
    await this.#rpc.setMany({ namespace: this.#ns(options), entries: list }, this.#call(options));
  }

  /** Removes several keys; how many held a value. */
  async deleteMany(keys: Iterable<string>, options?: CallOptions): Promise<number> {
    return (await this.#rpc.deleteMany({ namespace: this.#ns(options), keys: [...keys] }, this.#call(options))).deleted;
  }

  /** Removes every key of the namespace (the client's, or `options.namespace`). */
  async clear(options?: CallOptions): Promise<void> {
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
    for await (const res of this.#rpc.streamGet(requests, this.#call(options))) {
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
    return Number((await this.#rpc.streamSet(requests, this.#call(options))).stored);
  }

  /** Closes the connection; calls in flight fail with CANCELLED. */
  close(): void {
    this.#rpc.close();
  }

  /** Closes the client at the end of an `await using` block. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
