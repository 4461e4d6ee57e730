import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { credentials as grpcCredentials, Metadata, type ChannelCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { isIP } from "node:net";
import { createClient, timeoutProblem, type CallOptions as RpcCallOptions, type ServiceClient } from "../core/grpc-adapter.js";
import { DEFAULT_NAMESPACE, namespaceProblem, resolveNamespace } from "../core/key-rules.js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../core/message-limits.js";
import { METHOD_POLICIES, type CacheMethod } from "../core/method-policy.js";
import { RpcError, Status } from "../core/rpc-error.js";
import { MAX_TAGS_PER_ENTRY, MAX_TAGS_PER_INVALIDATION } from "../core/tag-rules.js";
import type { TierCounters } from "../core/tier-counters.js";
import { shortestJitteredTtl } from "../core/ttl-jitter.js";
import { CacheService, Tier, type FoundEntry } from "../gen/tiercache/v1/cache_pb.js";
import { checkedDuration, checkedKey, checkedKeys, checkedNamespace, checkedTags } from "./argument-checks.js";
import { keyFromArguments } from "./cache-key.js";
import { CoherenceWatcher, type CoherenceOptions, type ReadMark } from "./coherence.js";
import { LOCAL_MISS, LocalTier, type CopyToken, type LocalCopy, type LocalTierOptions, type ServerCopy } from "./local-tier.js";
import { jsonSerializer, type Serializer } from "./serializer.js";
import { heldClient, ProcessHold, unheldCredentials } from "./process-hold.js";
import { LeaseSession } from "./lease-session.js";
import { rotateOnConnectionChange } from "./session-rotation.js";
import { tracingOn } from "../core/rpc-tracing.js";
import { tracedClient } from "./traced-rpc.js";
import { resolveWrapOptions, Wrapper, type Loader, type ResolvedWrapOptions, type StoreOptions, type WrapOptions, type WrapTask } from "./wrap.js";
import { LoaderContext, type WrapContext } from "./wrap-context.js";
import { encodingOfItsOwn } from "./owned-bytes.js";

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
  /** Namespace of calls that name none ("" = "default"). @default "default" */
  namespace?: string;
  /** Encodes values to bytes and back. @default jsonSerializer */
  serializer?: Serializer;
  /** Deadline of each call, in ms: over 0, at most 2^31-1 (about 24.8 days). @default 5000 */
  timeoutMs?: number;
  /**
   * Items per message in streaming bulk calls, and per GetMany/SetMany call
   * made by `wrapMany`; keep it at most the server's `--max-batch`. @default 500
   */
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
  token?: string | undefined;
  /**
   * grpc-js channel options. By default the client lets the server send up
   * to {@link CLIENT_FLOW_CONTROL_WINDOW_BYTES} unread bytes on each stream
   * (`grpc-node.flow_control_window`), not HTTP/2's 64 KiB.
   */
  channelOptions?: ChannelOptions;
  /**
   * Called when a background part of `wrap` fails: the write of a loaded
   * value (the caller already has it; its local copy is dropped and the
   * lease given back) or an eager refresh (the current value stays).
   * Counted in {@link CacheClient.wrapStats} either way.
   * @default logs one line with console.warn
   */
  onBackgroundError?: (error: unknown, info: BackgroundErrorInfo) => void;
}

/** What failed in the background, for {@link CacheClientOptions.onBackgroundError}. */
export interface BackgroundErrorInfo {
  task: WrapTask;
  namespace: string;
  key: string;
}

/** Counters of `wrap`'s background work. */
export interface WrapStats {
  /** Writes of loaded values that failed (or whose outcome is unknown). */
  writeFailures: number;
  /** Eager or stale-while-revalidate refreshes that failed. */
  refreshFailures: number;
}

/**
 * Statuses of a failed Set that the server gives only when the write did not
 * reach every tier, and so never put its writer's tag on a Watch event (any
 * other failure, a deadline or a lost connection say, may hide a write that
 * did).
 */
const REFUSED_WRITE = new Set<number>([Status.INVALID_ARGUMENT, Status.RESOURCE_EXHAUSTED, Status.PERMISSION_DENIED, Status.UNAUTHENTICATED, Status.FAILED_PRECONDITION]);

/**
 * After a write of unknown outcome retired the writer id, writes go untagged
 * (their Watch events reach this client) for this long, so that writes that
 * keep failing restart the Watch stream at most once per period.
 */
const UNTAGGED_AFTER_UNKNOWN_MS = 1000;

/** An own write sent and not answered yet, and the local copy it kept. */
interface UnansweredWrite {
  readonly key: string;
  readonly kept: CopyToken | undefined;
}

/** A fresh writer id (see SetRequest.writer_id). */
function newWriterId(): string {
  return randomBytes(12).toString("base64url");
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

function clientNamespace(namespace: string | undefined): string {
  const problem = namespace === undefined ? undefined : namespaceProblem(namespace);
  if (problem !== undefined) throw new TypeError(problem);
  return resolveNamespace(namespace ?? DEFAULT_NAMESPACE);
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

/** Methods the client retries on UNAVAILABLE (see core/method-policy.ts). */
const RETRIED_METHODS = (Object.keys(METHOD_POLICIES) as CacheMethod[]).filter((m) => METHOD_POLICIES[m].retryOnUnavailable).map((m) => CacheService.method[m].name);

function serviceConfig(retryReads: boolean, balanced: boolean): string {
  return JSON.stringify({
    loadBalancingConfig: balanced ? [{ round_robin: {} }] : [{ pick_first: {} }],
    methodConfig: retryReads
      ? [
          {
            name: RETRIED_METHODS.map((method) => ({ service: CacheService.typeName, method })),
            retryPolicy: { maxAttempts: 3, initialBackoff: "0.05s", maxBackoff: "0.5s", backoffMultiplier: 2, retryableStatusCodes: ["UNAVAILABLE"] },
          },
        ]
      : [],
  });
}

/** Options every call takes. */
export interface CallOptions {
  /** Namespace of this call ("" = "default"); defaults to the client's. */
  namespace?: string;
  /**
   * Deadline of this call, in ms (over 0, at most 2^31-1); defaults to the
   * client's. Anything else rejects with INVALID_ARGUMENT.
   */
  timeoutMs?: number;
  /** Cancels the call when aborted. */
  signal?: AbortSignal;
}

/** Options of writes. */
export interface SetOptions extends CallOptions {
  /**
   * Time to live in ms; 0 or absent = the namespace's default (no expiry
   * unless configured). A fraction is rounded up to the next whole ms;
   * negative, NaN, infinite or over 100 years is INVALID_ARGUMENT.
   */
  ttl?: number;
  /**
   * Tags that {@link CacheClient.invalidateTags} can hide the value by (every
   * value of the call, for setMany and streamSet): at most 16, each 1 to 128
   * UTF-8 bytes; more is INVALID_ARGUMENT.
   */
  tags?: readonly string[];
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
export type TierName = "client" | "memory" | "lmdb" | "redis" | "unknown";

/** A value read with its metadata. */
export interface CacheEntry<T> {
  value: T;
  contentType: string;
  /** ms until plain reads stop returning it (the start of its grace period when it has one; as of now, for a local copy); 0 = never. */
  ttlRemainingMs: number;
  /** The tier that answered: a server tier, or "client" for the local tier. */
  tier: TierName;
}

/**
 * Counters of one tier of one namespace (see the Stats RPC). `entries` and
 * `bytes` are absent for a durable tier: it does not count them per
 * namespace (see {@link ServerStats.durableEntries} for the whole tier).
 */
export interface TierStats extends Omit<TierCounters, "entries" | "bytes"> {
  tier: TierName;
  /** Entries held now (memory tier); absent when not reported (durable tiers). */
  entries?: number;
  /** Bytes held now, per-entry overhead included (memory tier); absent when not reported (durable tiers). */
  bytes?: number;
}

/** State of the durable tier's circuit breaker (Redis): "closed" is healthy, "open" fails fast, "half-open" probes. */
export type BreakerState = "closed" | "open" | "half-open";

/** Figures of the server instance as a whole (see the Stats RPC). */
export interface ServerStats {
  /** The durable tier's circuit breaker; absent when the server has no remote durable tier (memory, LMDB). */
  durableBreaker?: BreakerState;
  /** The server-wide memory budget (`--max-memory`), in bytes; 0 = unbounded. */
  memoryBudgetBytes: number;
  /** Bytes counted against the budget now (memory tiers, namespace state, leases). */
  memoryUsedBytes: number;
  /** Entries evicted to keep within the budget since start. */
  memoryBudgetEvictions: number;
  /** Namespaces holding data now. */
  namespacesHeld: number;
  /** Entries the durable tier holds now, all namespaces together; absent when not reported (Redis, or no durable tier). */
  durableEntries?: number;
  /** Bytes of the durable tier's storage holding them; absent when not reported. */
  durableBytes?: number;
}

/** What {@link CacheClient.statsReport} returns: per-namespace counters and the server-wide figures. */
export interface StatsReport {
  namespaces: NamespaceStats[];
  server: ServerStats;
}

/** Counters of one namespace. */
export interface NamespaceStats {
  namespace: string;
  tiers: TierStats[];
  /** Value bytes written, before compression. */
  bytesIn: number;
  /** Envelope bytes stored for those writes (header and compression included). */
  bytesStored: number;
  /** bytesIn / bytesStored (0 before the first write): 9 means values are stored 9× smaller. */
  compressionRatio: number;
  /** Writes kept in server memory only because the durable tier was down. */
  degradedWrites: number;
  /** InvalidateTags calls made through the server instance that answered. */
  tagInvalidations: number;
}

/**
 * wrapMany's batch loader: gets the missing keys, and `context(key)`, the
 * {@link WrapContext} of one of them (to set its TTL, grace or tags, or skip
 * caching it); returns a Map or a record of the values it found.
 */
export type ManyLoader<T> = (
  missing: string[],
  context: (key: string) => WrapContext,
) => Promise<ReadonlyMap<string, T> | Record<string, T>> | ReadonlyMap<string, T> | Record<string, T>;

/** Entries to write: a record, a Map, or any iterable of pairs. */
export type EntriesInput = Record<string, unknown> | ReadonlyMap<string, unknown> | Iterable<readonly [string, unknown]>;

const TIER_NAMES: Record<Tier, TierName> = {
  [Tier.UNSPECIFIED]: "unknown",
  [Tier.MEMORY]: "memory",
  [Tier.LMDB]: "lmdb",
  [Tier.REDIS]: "redis",
};

/** The checked tags of a write's options ([] when none). */
function tagsOf(options: SetOptions | undefined): string[] {
  return options?.tags === undefined ? [] : checkedTags(options.tags, MAX_TAGS_PER_ENTRY, "a value");
}

function entriesOf(input: EntriesInput): Iterable<readonly [string, unknown]> {
  if (input instanceof Map) return input.entries();
  if (Symbol.iterator in input) return input as Iterable<readonly [string, unknown]>;
  return Object.entries(input);
}

/** One entry as SetMany and StreamSet send it. */
interface WireEntry {
  key: string;
  value: Uint8Array;
  contentType: string;
  ttlMs: bigint;
  graceMs: bigint;
  tags: string[];
}

function localEntry<T>(copy: LocalCopy): CacheEntry<T> {
  return { value: copy.value as T, contentType: copy.contentType, ttlRemainingMs: copy.ttlRemainingMs, tier: "client" };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function* syncBatches<T>(items: Iterable<T>, size: number): Iterable<T[]> {
  let batch: T[] = [];
  for (const item of items) {
    batch.push(item);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/**
 * The HTTP/2 receive window of the client's connection, and of each of its
 * streams: how much the server may send before the client has read it. With
 * HTTP/2's default of 64 KiB, a StreamGet batch of 500 values of 1 KiB
 * waited for eight window updates; with 4 MiB it is sent at once, which took
 * 1,000 keys from about 7.5 to 4.5 ms here. The window is per stream: a
 * stream you stop reading holds up to 4 MiB more than it did with 64 KiB
 * (besides the messages grpc-js buffers, about 16).
 */
export const CLIENT_FLOW_CONTROL_WINDOW_BYTES = 4 * 1024 * 1024;

async function* batches<T>(items: AsyncIterable<T> | Iterable<T>, size: number): AsyncIterable<T[]> {
  if (typeof items !== "object" || items === null || !(Symbol.asyncIterator in items)) {
    yield* syncBatches(items, size); // no await per item
    return;
  }
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
 * Keys, namespaces and durations the server would refuse or garble (an
 * empty key, a key that is not well-formed Unicode, an invalid namespace, a
 * negative or non-finite TTL) are refused with INVALID_ARGUMENT before
 * anything is sent.
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
  /** GetOrLease, Set and ReleaseLease of `wrap`, as messages of one stream. */
  readonly #session: LeaseSession;
  readonly #timeoutMs: number;
  /**
   * Tags this client's writes, and its Watch leaves their events out (see
   * WatchRequest.writer_id): their answers do the events' work. Replaced
   * after a write whose outcome is unknown, whose event must reach us.
   */
  #writerId = newWriterId();
  #writeSeq = 0n;
  /** Writes go untagged until then (performance.now()): see UNTAGGED_AFTER_UNKNOWN_MS. */
  #untaggedUntil = 0;
  /** Own writes not answered yet, per namespace: each READY settles them again, in case their left-out events were among those it covers. */
  readonly #unanswered = new Map<string, Set<UnansweredWrite>>();
  readonly #wrapStats: WrapStats = { writeFailures: 0, refreshFailures: 0 };
  readonly #onBackgroundError: (error: unknown, info: BackgroundErrorInfo) => void;

  constructor(options: CacheClientOptions) {
    this.#onBackgroundError =
      options.onBackgroundError ??
      ((error, { task, namespace, key }) => console.warn(`tiercache: background ${task} of ${JSON.stringify(key)} in ${namespace} failed: ${String(error)}`));
    this.#namespace = clientNamespace(options.namespace);
    this.#serializer = options.serializer ?? jsonSerializer;
    this.#streamBatchSize = positiveInteger("streamBatchSize", options.streamBatchSize, 500);
    const maxReceiveMessageBytes = positiveInteger("maxReceiveMessageBytes", options.maxReceiveMessageBytes, DEFAULT_MAX_MESSAGE_BYTES);
    const timeoutIssue = options.timeoutMs === undefined ? undefined : timeoutProblem("timeoutMs", options.timeoutMs);
    if (timeoutIssue !== undefined) throw new TypeError(timeoutIssue);
    this.#token = options.token;
    // With a local tier, the endless Watch stream must not keep the process alive: only calls in flight do.
    const hold = options.localTier ? new ProcessHold() : undefined;
    const credentials = channelCredentials(options);
    const rpc = createClient(CacheService, target(options), hold ? unheldCredentials(credentials) : credentials, {
      defaultTimeoutMs: options.timeoutMs ?? 5000,
      channelOptions: {
        "grpc.service_config": serviceConfig(options.retryReads ?? true, (options.addresses?.length ?? 0) > 1),
        "grpc.enable_retries": 1,
        "grpc.keepalive_time_ms": 30_000,
        "grpc.keepalive_timeout_ms": 10_000,
        "grpc.initial_reconnect_backoff_ms": 200,
        "grpc.max_reconnect_backoff_ms": 5_000,
        "grpc.max_receive_message_length": maxReceiveMessageBytes,
        "grpc-node.flow_control_window": CLIENT_FLOW_CONTROL_WINDOW_BYTES,
        ...options.channelOptions,
      },
    });
    this.#rpc = tracedClient(CacheService, hold ? heldClient(CacheService, rpc, hold, ["watch", "leaseSession"]) : rpc, ["watch", "leaseSession"]);
    this.#timeoutMs = options.timeoutMs ?? 5000;
    const rpcs = this.#rpc;
    this.#session = new LeaseSession(
      {
        open: (requests, call) => rpcs.leaseSession(requests, call),
        unary: {
          getOrLease: (request, call) => rpcs.getOrLease(request, call),
          set: (request, call) => rpcs.set(request, call),
          releaseLease: (request, call) => rpcs.releaseLease(request, call),
        },
        callOptions: () => this.#call(undefined),
        preferUnary: tracingOn,
        maxReceiveMessageBytes: receiveLimit(options.channelOptions, maxReceiveMessageBytes),
      },
      hold ? { hold } : {},
    );
    rotateOnConnectionChange(rpc.grpcClient.getChannel(), this.#session);
    if (options.localTier) {
      const local = new LocalTier(options.localTier === true ? {} : options.localTier);
      this.#local = local;
      this.#watcher = new CoherenceWatcher(
        this.#rpc,
        {
          invalidate: (ns, keys) => keys.forEach((key) => local.delete(ns, key)),
          flush: (ns) => local.flush(ns),
          caughtUp: (ns) => this.#unanswered.get(ns)?.forEach((write) => this.#settleOwnWrite(ns, write.key, write.kept)),
        },
        options.coherence,
        () => this.#call(undefined).metadata,
      );
      this.#watcher.watchAs(this.#writerId);
    }
    this.#wrapper = new Wrapper({
      getOrLease: async (namespace, key, leaseMs, waitMs, waitOnStale, refreshAheadMs) => {
        const mark = this.#watcher?.mark(namespace);
        const res = await this.#session.call("getOrLease", { namespace, key, leaseMs, waitMs, waitOnStale, refreshAheadMs }, waitMs > 0 ? waitMs + 5000 : this.#timeoutMs);
        const value = res.found ? this.#serializer.decode(res.value, res.contentType) : undefined;
        if (res.found && !res.stale) this.#remember(namespace, key, this.#serverCopy(value, res), mark, res.streamId);
        return { found: res.found, value, stale: res.stale, leaseToken: res.leaseToken, ttlJitterPpm: res.ttlJitterPpm };
      },
      store: (namespace, key, value, options) => this.#storeOwnWrite(namespace, key, encodingOfItsOwn(this.#serializer.encode(value)), options),
      releaseLease: async (namespace, key, leaseToken) => {
        await this.#session.call("releaseLease", { namespace, key, leaseToken }, this.#timeoutMs);
      },
      local: (namespace, key, refreshAheadMs) => {
        if (refreshAheadMs === 0) {
          const value = this.#localValue(namespace, key);
          return value === LOCAL_MISS ? { found: false, value: undefined, due: false } : { found: true, value, due: false };
        }
        const copy = this.#coherentLocal(namespace)?.get(namespace, key);
        if (copy === undefined) return { found: false, value: undefined, due: false };
        return { found: true, value: copy.value, due: copy.ttlRemainingMs !== 0 && copy.ttlRemainingMs <= refreshAheadMs };
      },
      failed: (task, namespace, key, error) => {
        if (task === "write") this.#wrapStats.writeFailures++;
        else this.#wrapStats.refreshFailures++;
        try {
          this.#onBackgroundError(error, { task, namespace, key });
        } catch {
          // A throwing error handler must not become an unhandled rejection.
        }
      },
    });
  }

  /**
   * Writes a loaded value, tagged with this client's writer id, whose Watch
   * leaves such writes out. Keeps the value as the local copy at once (with
   * an explicit TTL, while the namespace is coherent). The answer then does
   * what the write's Watch event would have: reads of the key in flight
   * keep nothing, and any copy but this write's own is dropped. Each READY
   * of the namespace does the same while the answer is awaited, so that a
   * late answer does not hold a stale copy past the Watch bound. A failed
   * write drops the key's copy; one whose outcome is unknown also retires
   * the writer id, so that its event reaches us if it lands after all, and
   * the writes of the next UNTAGGED_AFTER_UNKNOWN_MS go untagged.
   */
  async #storeOwnWrite(namespace: string, key: string, { bytes, contentType }: { bytes: Uint8Array; contentType: string }, { ttl, grace, leaseToken, ttlJitterPpm, tags }: StoreOptions): Promise<void> {
    const local = this.#coherentLocal(namespace);
    let kept: CopyToken | undefined;
    // Until the answer says which TTL the server gave it, the copy lasts the shortest the namespace's ttlJitter allows.
    const shortestTtl = shortestJitteredTtl(ttl, ttlJitterPpm);
    if (local !== undefined && shortestTtl > 0) {
      // The copy other readers get is what a read from the server would give (the serializer's round trip of bytes of its own), not the loader's object.
      const value = this.#serializer.decode(bytes, contentType);
      this.#watcher!.changedLocally(namespace, key);
      kept = local.set(namespace, key, { value, contentType, size: bytes.byteLength, freshMs: shortestTtl, ttlRemainingMs: shortestTtl });
    } else {
      this.#local?.delete(namespace, key);
    }
    const sentAt = performance.now();
    const writerId = sentAt < this.#untaggedUntil ? "" : this.#writerId;
    const request = { namespace, key, value: bytes, contentType, ttlMs: BigInt(ttl), graceMs: BigInt(grace), leaseToken, writerId, writeSeq: ++this.#writeSeq, tags: tags === undefined ? [] : [...tags] }; // checked by resolveWrapOptions or ctx.setTags
    const unanswered = this.#settlesLocally(namespace) ? this.#unansweredIn(namespace) : undefined;
    const write: UnansweredWrite = { key, kept };
    unanswered?.add(write);
    let answer: { ttlMs: bigint };
    try {
      answer = await this.#session.call("set", request, this.#timeoutMs);
    } catch (err) {
      this.#settleOwnWrite(namespace, key, undefined);
      if (writerId !== "" && writerId === this.#writerId && !(err instanceof RpcError && REFUSED_WRITE.has(err.code))) {
        this.#writerId = newWriterId();
        this.#untaggedUntil = performance.now() + UNTAGGED_AFTER_UNKNOWN_MS;
        this.#watcher?.watchAs(this.#writerId);
      }
      throw err;
    } finally {
      this.#answered(namespace, unanswered, write);
    }
    // The server may have given a shorter TTL still (an older server, or an instance with more jitter): the copy follows it.
    if (kept !== undefined && answer.ttlMs > 0n && answer.ttlMs < BigInt(ttl)) {
      const freshMs = Number(answer.ttlMs) - Math.ceil(performance.now() - sentAt);
      if (!this.#local!.shorten(namespace, key, kept, freshMs)) kept = undefined;
    }
    this.#settleOwnWrite(namespace, key, kept);
  }

  #unansweredIn(namespace: string): Set<UnansweredWrite> {
    let writes = this.#unanswered.get(namespace);
    if (writes === undefined) this.#unanswered.set(namespace, (writes = new Set()));
    return writes;
  }

  #answered(namespace: string, unanswered: Set<UnansweredWrite> | undefined, write: UnansweredWrite): void {
    if (unanswered === undefined) return;
    unanswered.delete(write);
    if (unanswered.size === 0 && this.#unanswered.get(namespace) === unanswered) this.#unanswered.delete(namespace);
  }

  /** Does the work of an own write's left-out Watch event once it is over: marks the key changed and drops every copy but `kept`. */
  #settleOwnWrite(namespace: string, key: string, kept: CopyToken | undefined): void {
    if (!this.#settlesLocally(namespace)) return;
    this.#watcher!.changedLocally(namespace, key);
    this.#local!.dropUnless(namespace, key, kept);
  }

  /** Whether own writes of `namespace` have local copies and reads to settle (a watched local tier covers it). */
  #settlesLocally(namespace: string): boolean {
    return this.#watcher !== undefined && this.#local!.covers(namespace);
  }

  /**
   * Resolves when the background writes (and refreshes) that `wrap` has
   * started so far are done, stored or failed; never rejects. Await it to
   * know that other clients can read what `wrap` loaded.
   */
  settled(): Promise<void> {
    return this.#wrapper.settled();
  }

  /** Counters of `wrap`'s background writes and refreshes that failed. */
  wrapStats(): WrapStats {
    return { ...this.#wrapStats };
  }

  /** The local tier when it may serve `namespace` now; starts watching the namespace when it may not yet. */
  #coherentLocal(namespace: string): LocalTier | undefined {
    const local = this.#local;
    if (!local || !local.covers(namespace)) return undefined;
    if (this.#watcher!.isCoherent(namespace)) return local;
    this.#watcher!.watch(namespace);
    return undefined;
  }

  /** The coherent local copy's value, or LOCAL_MISS (no allocation: the hot path of a local hit). */
  #localValue(namespace: string, key: string): unknown {
    const local = this.#coherentLocal(namespace);
    return local === undefined ? LOCAL_MISS : local.value(namespace, key);
  }

  #serverCopy(value: unknown, read: Pick<FoundEntry, "value" | "contentType" | "ttlRemainingMs" | "freshRemainingMs">): ServerCopy {
    return {
      value,
      contentType: read.contentType,
      size: read.value.byteLength,
      freshMs: Number(read.freshRemainingMs),
      ttlRemainingMs: Number(read.freshRemainingMs),
    };
  }

  /**
   * Keeps a value read from the server locally for at most its fresh time
   * (until it expires, or until stale when it has grace), unless the
   * namespace changed (or went incoherent) since the read began.
   */
  #remember(namespace: string, key: string, copy: ServerCopy, mark: ReadMark | undefined, streamId: string): void {
    const local = this.#local;
    if (!local || !local.covers(namespace) || mark === undefined) return;
    if (!this.#watcher!.watches(namespace, streamId) || !this.#watcher!.unchangedSince(namespace, key, mark)) return;
    local.set(namespace, key, copy);
  }

  #forgetLocal(namespace: string, keys: Iterable<string>): void {
    if (!this.#local) return;
    for (const key of keys) this.#local.delete(namespace, key);
  }

  /** The call's namespace, checked ("" = "default"), or the client's. */
  #ns(options: CallOptions | undefined): string {
    const namespace = options?.namespace;
    return namespace === undefined ? this.#namespace : checkedNamespace(namespace);
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

  #entry<T>(found: Pick<FoundEntry, "value" | "contentType" | "freshRemainingMs" | "tier">): CacheEntry<T> {
    return {
      value: this.#serializer.decode(found.value, found.contentType) as T,
      contentType: found.contentType,
      ttlRemainingMs: Number(found.freshRemainingMs),
      tier: TIER_NAMES[found.tier] ?? "unknown",
    };
  }

  /** The value stored under `key`, or `undefined` on a miss (or when `undefined` itself was stored). */
  async get<T = unknown>(key: string, options?: CallOptions): Promise<T | undefined> {
    const namespace = this.#ns(options);
    const value = this.#localValue(namespace, key);
    if (value !== LOCAL_MISS) return value as T;
    checkedKey(key);
    return (await this.#getEntry<T>(namespace, key, options))?.value;
  }

  /**
   * The value and its metadata, or `undefined` on a miss; tells a stored
   * `undefined` apart from a miss. A value past its TTL but within grace is
   * a miss here (use `wrap` to get stale values). Served from the local tier
   * (tier "client") when it holds a coherent copy.
   */
  async getEntry<T = unknown>(key: string, options?: CallOptions): Promise<CacheEntry<T> | undefined> {
    checkedKey(key);
    return this.#getEntry<T>(this.#ns(options), key, options);
  }

  async #getEntry<T>(namespace: string, key: string, options: CallOptions | undefined): Promise<CacheEntry<T> | undefined> {
    const local = this.#coherentLocal(namespace)?.get(namespace, key);
    if (local) return localEntry<T>(local);
    const mark = this.#watcher?.mark(namespace);
    let res;
    try {
      res = await this.#rpc.get({ namespace, key }, this.#call(options));
    } catch (err) {
      if (this.#local?.serveStaleWhenUnavailable && RpcError.is(err, Status.UNAVAILABLE)) {
        const held = this.#local.get(namespace, key);
        if (held) return localEntry<T>(held);
      }
      throw err;
    }
    if (!res.found || res.stale) return undefined;
    const entry = this.#entry<T>(res);
    this.#remember(namespace, key, this.#serverCopy(entry.value, res), mark, res.streamId);
    return entry;
  }

  /**
   * The local tier's coherent copy of `key`, synchronously, or `undefined`
   * (not held, not coherent now, or no local tier). Never calls the server.
   * Throws RpcError INVALID_ARGUMENT for a key or namespace the server would refuse.
   */
  getLocal<T = unknown>(key: string, options?: Pick<CallOptions, "namespace">): T | undefined {
    const value = this.#localValue(this.#ns(options), key);
    if (value !== LOCAL_MISS) return value as T;
    checkedKey(key);
    return undefined;
  }

  /**
   * Stores `value` under `key`; resolves once every server tier has it
   * (`degraded`: the server had no durable tier to write to and runs with
   * degraded writes on, so the value is in its memory only).
   */
  async set(key: string, value: unknown, options?: SetOptions): Promise<{ degraded: boolean }> {
    checkedKey(key);
    const namespace = this.#ns(options);
    const ttlMs = BigInt(checkedDuration("ttl", options?.ttl));
    const tags = tagsOf(options);
    const { bytes, contentType } = this.#serializer.encode(value);
    this.#forgetLocal(namespace, [key]);
    const res = await this.#rpc.set({ namespace, key, value: bytes, contentType, ttlMs, tags }, this.#call(options));
    return { degraded: res.degraded };
  }

  /** Removes `key`; true when it held a value. */
  async delete(key: string, options?: CallOptions): Promise<boolean> {
    checkedKey(key);
    const namespace = this.#ns(options);
    this.#forgetLocal(namespace, [key]);
    return (await this.#rpc.delete({ namespace, key }, this.#call(options))).deleted;
  }

  /** True when `key` holds a fresh value (a stale one, within grace, counts as absent). */
  async has(key: string, options?: CallOptions): Promise<boolean> {
    checkedKey(key);
    return (await this.#rpc.has({ namespace: this.#ns(options), key }, this.#call(options))).found;
  }

  /** Gives `key` a new TTL (`options.ttl`, counted from now); false when it holds no value. */
  async touch(key: string, options: SetOptions = {}): Promise<boolean> {
    checkedKey(key);
    const namespace = this.#ns(options);
    const ttlMs = BigInt(checkedDuration("ttl", options.ttl));
    this.#forgetLocal(namespace, [key]);
    return (await this.#rpc.touch({ namespace, key, ttlMs }, this.#call(options))).found;
  }

  /** The values of the keys found, keyed by key; missing keys are absent from the Map. */
  async getMany<T = unknown>(keys: Iterable<string>, options?: CallOptions): Promise<Map<string, T>> {
    const list = checkedKeys(keys);
    return this.#getMany<T>(this.#ns(options), list, options);
  }

  async #getMany<T>(namespace: string, keys: readonly string[], options: CallOptions | undefined): Promise<Map<string, T>> {
    const result = new Map<string, T>();
    const local = this.#coherentLocal(namespace);
    const ask: string[] = [];
    for (const key of keys) {
      const value = local === undefined ? LOCAL_MISS : local.value(namespace, key);
      if (value !== LOCAL_MISS) result.set(key, value as T);
      else ask.push(key);
    }
    if (ask.length === 0) return result;
    const mark = this.#watcher?.mark(namespace);
    const res = await this.#rpc.getMany({ namespace, keys: ask }, this.#call(options));
    for (const found of res.entries) {
      if (found.stale) continue;
      const entry = this.#entry<T>(found);
      this.#remember(namespace, found.key, this.#serverCopy(entry.value, found), mark, res.streamId);
      result.set(found.key, entry.value);
    }
    return result;
  }

  /** Encodes entries for the wire, refusing any key the server would refuse or garble. */
  #toEntries(input: Iterable<readonly [string, unknown]>, ttlMs: bigint, graceMs = 0n, tags: string[] = []): WireEntry[] {
    return Array.from(input, ([key, value]) => {
      checkedKey(key);
      const { bytes, contentType } = this.#serializer.encode(value);
      return { key, value: bytes, contentType, ttlMs, graceMs, tags };
    });
  }

  /** Stores several values in one call; all share `options.ttl`. */
  async setMany(entries: EntriesInput, options?: SetOptions): Promise<{ degraded: boolean }> {
    const namespace = this.#ns(options);
    const list = this.#toEntries(entriesOf(entries), BigInt(checkedDuration("ttl", options?.ttl)), 0n, tagsOf(options));
    return this.#setMany(namespace, list, options);
  }

  async #setMany(namespace: string, list: WireEntry[], options: CallOptions | undefined): Promise<{ degraded: boolean }> {
    this.#forgetLocal(namespace, list.map((e) => e.key));
    const res = await this.#rpc.setMany({ namespace, entries: list }, this.#call(options));
    return { degraded: res.degraded };
  }

  /** Removes several keys; how many held a value. */
  async deleteMany(keys: Iterable<string>, options?: CallOptions): Promise<number> {
    const list = checkedKeys(keys);
    const namespace = this.#ns(options);
    this.#forgetLocal(namespace, list);
    return (await this.#rpc.deleteMany({ namespace, keys: list }, this.#call(options))).deleted;
  }

  /**
   * Hides every value of the namespace (the client's, or `options.namespace`)
   * written before this call with any of `tags` (1 to 64): once it resolves,
   * no server instance serves them, and client local tiers drop them within
   * the same bound as a delete. The cost does not depend on how many values
   * carry the tags. Values written afterwards are served as usual.
   */
  async invalidateTags(tags: readonly string[], options?: CallOptions): Promise<void> {
    const list = checkedTags(tags, MAX_TAGS_PER_INVALIDATION, "invalidateTags");
    if (list.length === 0) throw new RpcError(Status.INVALID_ARGUMENT, "invalidateTags needs at least one tag");
    const namespace = this.#ns(options);
    this.#local?.flush(namespace);
    await this.#rpc.invalidateTags({ namespace, tags: list }, this.#call(options));
    this.#local?.flush(namespace);
  }

  /** Removes every key of the namespace (the client's, or `options.namespace`). */
  async clear(options?: CallOptions): Promise<void> {
    const namespace = this.#ns(options);
    this.#local?.flush(namespace);
    await this.#rpc.clear({ namespace }, this.#call(options));
  }

  /** Counters of `options.namespace`, or of every namespace when none (or "") is given. */
  async stats(options?: CallOptions): Promise<NamespaceStats[]> {
    return (await this.statsReport(options)).namespaces;
  }

  /**
   * The counters {@link stats} returns, and the server-wide figures beside
   * them: durable tier breaker, memory budget, namespaces held, durable tier
   * size (one Stats call).
   */
  async statsReport(options?: CallOptions): Promise<StatsReport> {
    const namespace = options?.namespace ? checkedNamespace(options.namespace) : "";
    const res = await this.#rpc.stats({ namespace }, this.#call(options));
    const breaker = res.durableBreaker;
    return {
      namespaces: res.namespaces.map((ns) => ({
        namespace: ns.namespace,
        bytesIn: Number(ns.bytesIn),
        bytesStored: Number(ns.bytesStored),
        compressionRatio: ns.compressionRatio,
        degradedWrites: Number(ns.degradedWrites),
        tagInvalidations: Number(ns.tagInvalidations),
        tiers: ns.tiers.map((t) => {
          const tier = TIER_NAMES[t.tier] ?? "unknown";
          // Durable tiers send 0 for "not reported" (proto TierStats.entries): no fake zeros.
          const reported = tier === "memory" || t.entries !== 0n || t.bytes !== 0n;
          return {
            tier,
            hits: Number(t.hits),
            misses: Number(t.misses),
            hitRate: t.hitRate,
            sets: Number(t.sets),
            deletes: Number(t.deletes),
            ...(reported && { entries: Number(t.entries), bytes: Number(t.bytes) }),
            evictionsSize: Number(t.evictionsSize),
            evictionsCount: Number(t.evictionsCount),
            expirations: Number(t.expirations),
          };
        }),
      })),
      server: {
        ...((breaker === "closed" || breaker === "open" || breaker === "half-open") && { durableBreaker: breaker }),
        memoryBudgetBytes: Number(res.memoryBudgetBytes),
        memoryUsedBytes: Number(res.memoryUsedBytes),
        memoryBudgetEvictions: Number(res.memoryBudgetEvictions),
        namespacesHeld: Number(res.namespacesHeld),
        ...(res.durableEntries !== undefined && { durableEntries: Number(res.durableEntries) }),
        ...(res.durableBytes !== undefined && { durableBytes: Number(res.durableBytes) }),
      },
    };
  }

  /**
   * Reads many keys over one stream, in batches of `options.batchSize`;
   * yields `[key, value]` for every distinct key of each batch, with
   * `undefined` for a miss (or a stale value). Keys are read from `keys` as
   * fast as the stream accepts batches, ahead of the answers consumed (a key
   * repeated in a later batch is answered again), and each batch is checked
   * before it is sent.
   */
  async *streamGet<T = unknown>(keys: AsyncIterable<string> | Iterable<string>, options?: StreamOptions): AsyncIterable<[string, T | undefined]> {
    const namespace = this.#ns(options);
    const size = positiveInteger("batchSize", options?.batchSize, this.#streamBatchSize);
    const requests = (async function* () {
      for await (const batch of batches(keys, size)) yield { namespace, keys: checkedKeys(batch) };
    })();
    for await (const res of this.#rpc.streamGet(requests, this.#streamCall(options))) {
      for (const entry of res.entries) yield [entry.key, entry.stale ? undefined : (this.#serializer.decode(entry.value, entry.contentType) as T)];
      for (const key of res.missing) yield [key, undefined];
    }
  }

  /**
   * Writes many entries over one stream, in batches of `options.batchSize`;
   * resolves with how many were stored. Each batch is checked before it is
   * sent: a bad key fails the call, and the batches before it stay stored.
   */
  async streamSet(entries: AsyncIterable<readonly [string, unknown]> | Iterable<readonly [string, unknown]>, options?: StreamOptions): Promise<number> {
    const namespace = this.#ns(options);
    const ttlMs = BigInt(checkedDuration("ttl", options?.ttl));
    const tags = tagsOf(options);
    const size = positiveInteger("batchSize", options?.batchSize, this.#streamBatchSize);
    const toEntries = (batch: (readonly [string, unknown])[]) => this.#toEntries(batch, ttlMs, 0n, tags);
    const forget = (list: readonly WireEntry[]) => this.#forgetLocal(namespace, list.map((e) => e.key));
    const requests = (async function* () {
      for await (const batch of batches(entries, size)) {
        const list = toEntries(batch);
        forget(list);
        yield { namespace, entries: list };
      }
    })();
    return Number((await this.#rpc.streamSet(requests, this.#streamCall(options))).stored);
  }

  /**
   * The cached value of `key`, or else the result of `loader`, stored with
   * `options.ttl`. Concurrent callers of one key in this client share one
   * loader run (for at most its `leaseMs`: then they run the loader
   * themselves, so a loader that never settles cannot block the key); across
   * clients a server lease lets one compute while the others wait up to
   * `leaseWaitMs`. With `grace`, a value past its TTL is returned at once
   * while one caller refreshes it in the background, and keeps being served
   * (within grace) if the loader fails; with `staleWhileRevalidate: false`,
   * one caller refreshes it while the others wait up to `softTimeout` for
   * its value, then get the stale one. A loader's `undefined` is cached only
   * with `negativeTtl`. If the service is unavailable, the loader's result
   * is returned uncached.
   *
   * A miss costs one call on the caller's path: the loaded value is
   * returned (and kept in the local tier) at once, and written in the
   * background (see `onBackgroundError`). The loader gets a
   * {@link WrapContext} to set this value's TTL, grace or tags, or to skip
   * caching it; with `eagerRefresh`, a hit late in its TTL is refreshed in
   * the background by one caller across clients.
   */
  wrap<T>(key: string, loader: Loader<T>, options: WrapOptions = {}): Promise<T> {
    let namespace: string;
    let resolved: ResolvedWrapOptions;
    try {
      checkedKey(key);
      namespace = this.#ns(options);
      resolved = resolveWrapOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#wrapper.wrap(namespace, key, loader, resolved);
  }

  /** Alias of {@link wrap}. */
  getOrSet<T>(key: string, loader: Loader<T>, options: WrapOptions = {}): Promise<T> {
    return this.wrap(key, loader, options);
  }

  /**
   * Values for many keys: reads them (in calls of at most `streamBatchSize`
   * keys) and sends only the missing keys to one `loader` call (which
   * returns a Map or a record of what it found); stores what it returns.
   * Keys the loader does not return, or returns as `undefined`, are absent
   * from the result (and cached as `undefined` with `negativeTtl`).
   */
  async wrapMany<T>(
    keys: Iterable<string>,
    loader: ManyLoader<T>,
    options: WrapOptions = {},
  ): Promise<Map<string, T>> {
    const wanted = [...new Set(checkedKeys(keys))];
    const namespace = this.#ns(options);
    const resolved = resolveWrapOptions(options);
    const found = new Map<string, T>();
    const reads = await Promise.all(chunks(wanted, this.#streamBatchSize).map((batch) => this.#getMany<T>(namespace, batch, options)));
    for (const read of reads) for (const [key, value] of read) found.set(key, value);
    const missing = wanted.filter((key) => !found.has(key));
    const loaded = missing.length === 0 ? new Map<string, T>() : await this.#loadMissing(namespace, missing, loader, resolved, options);
    const result = new Map<string, T>();
    for (const key of wanted) {
      const value = found.has(key) ? found.get(key) : loaded.get(key);
      if (value !== undefined) result.set(key, value);
    }
    return result;
  }

  /** wrapMany's loader call (each key with its own context), and the writes of what it returned (failed writes are ignored). */
  async #loadMissing<T>(namespace: string, missing: string[], loader: ManyLoader<T>, { ttl, grace, negativeTtl, tags }: ResolvedWrapOptions, options: CallOptions): Promise<Map<string, T>> {
    const asked = new Set(missing);
    const contexts = new Map<string, LoaderContext>();
    let ended = false;
    const contextOf = (key: string): WrapContext => {
      if (!asked.has(key)) throw new TypeError(`wrapMany: ${JSON.stringify(key)} is not one of the missing keys`);
      let ctx = contexts.get(key);
      if (ctx === undefined) {
        ctx = new LoaderContext();
        if (ended) ctx.end();
        else contexts.set(key, ctx);
      }
      return ctx;
    };
    let returned: Awaited<ReturnType<ManyLoader<T>>>;
    try {
      returned = await loader(missing, contextOf);
    } finally {
      ended = true;
      for (const ctx of contexts.values()) ctx.end();
    }
    const loaded = new Map<string, T>();
    for (const [key, value] of returned instanceof Map ? returned : Object.entries(returned as Record<string, T>)) {
      if (asked.has(key) && value !== undefined) loaded.set(key, value);
    }
    const entries: WireEntry[] = [];
    for (const key of missing) {
      const ctx = contexts.get(key);
      if (ctx?.skipped) continue;
      const found = loaded.has(key);
      if (!found && negativeTtl === undefined && ctx?.ttl === undefined) continue;
      const entryTtl = ctx?.ttl ?? (found ? ttl : negativeTtl!);
      const entryGrace = ctx?.grace ?? (found ? grace : 0);
      const entryTags = ctx?.tags ?? tags;
      entries.push(...this.#toEntries([[key, loaded.get(key)]], BigInt(entryTtl), BigInt(entryGrace), entryTags === undefined ? [] : [...entryTags])); // checked by resolveWrapOptions or ctx.setTags
    }
    await Promise.all(chunks(entries, this.#streamBatchSize).map((batch) => this.#setMany(namespace, batch, options).catch(() => {})));
    return loaded;
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

  /**
   * Closes the connection: calls already sent run to their end, calls still
   * waiting for the connection fail with UNAVAILABLE, calls made after it
   * fail with CANCELLED. Does not wait for `wrap`'s background writes (see
   * {@link settled}); those not yet sent fail and are reported.
   */
  close(): void {
    this.#session.close();
    this.#watcher?.close();
    this.#rpc.close();
  }

  /** Closes the client at the end of an `await using` block, once wrap's background writes are done. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.settled();
    this.close();
  }
}

/** The largest message the channel reads: `grpc.max_receive_message_length` when `channelOptions` sets it (-1: no limit). */
function receiveLimit(channelOptions: ChannelOptions | undefined, fallback: number): number {
  const set = channelOptions?.["grpc.max_receive_message_length"];
  if (typeof set !== "number") return fallback;
  return set < 0 ? Infinity : set;
}
