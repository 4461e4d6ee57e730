import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CallContext, ServiceImpl } from "../../core/grpc-adapter.js";
import { jitterPpm } from "../../core/ttl-jitter.js";
import {
  CacheService,
  Tier,
  type Entry,
  type FoundEntrySchema,
  type StatsResponseSchema,
} from "../../gen/tiercache/v1/cache_pb.js";
import { checkResponseSize, NEEDS_ASYNC, type CacheEngine, type FoundValue, type Hit, type ValueToSet } from "../engine/cache-engine.js";
import { streamGetResponseOf, TIER_NUMBERS } from "./found-entries-message.js";
import { ResponseBudget } from "./response-budget.js";
import { checkWriterId } from "../engine/validation.js";
import type { CallScope, Tenant } from "../engine/durable-tier.js";
import type { NamespaceStatsSnapshot } from "../engine/namespace-stats.js";
import { watchStream, type WatchOptions } from "./watch-stream.js";
import { leaseSession, type LeaseSessionOptions } from "./lease-session.js";

function toFoundEntry(found: FoundValue): MessageInitShape<typeof FoundEntrySchema> {
  return { key: found.key, value: found.value, contentType: found.contentType, ttlRemainingMs: BigInt(found.ttlRemainingMs), tier: TIER_NUMBERS[found.tier], stale: found.stale, freshRemainingMs: BigInt(found.freshRemainingMs) };
}

/** The fields Get and GetOrLease responses share. */
interface ReadResponseFields {
  streamId: string;
  found?: boolean;
  value?: Uint8Array;
  contentType?: string;
  ttlRemainingMs?: bigint;
  tier?: Tier;
  stale?: boolean;
  freshRemainingMs?: bigint;
}

/** A Get or GetOrLease response for what the engine found (or nothing). */
function toGetResponse(found: FoundValue | undefined, streamId: string): ReadResponseFields {
  if (!found) return { streamId };
  return { streamId, found: true, value: found.value, contentType: found.contentType, ttlRemainingMs: BigInt(found.ttlRemainingMs), tier: TIER_NUMBERS[found.tier], stale: found.stale, freshRemainingMs: BigInt(found.freshRemainingMs) };
}

/** int64 on the wire; out-of-range values become numbers the engine's range check refuses. */
function ttlOf(ttlMs: bigint): number {
  return Number(ttlMs);
}

function toValue(entry: Entry): ValueToSet {
  const value: ValueToSet = { key: entry.key, value: entry.value, contentType: entry.contentType, ttlMs: ttlOf(entry.ttlMs), graceMs: ttlOf(entry.graceMs) };
  if (entry.tags.length > 0) value.tags = entry.tags;
  return value;
}

const big = (n: number) => BigInt(n);

function toStats(snapshots: NamespaceStatsSnapshot[]): MessageInitShape<typeof StatsResponseSchema> {
  return {
    namespaces: snapshots.map((ns) => ({
      namespace: ns.namespace,
      degradedWrites: big(ns.degradedWrites),
      tagInvalidations: big(ns.tagInvalidations),
      compressionRatio: ns.compressionRatio,
      bytesIn: big(ns.bytesIn),
      bytesStored: big(ns.bytesStored),
      tiers: ns.tiers.map((t) => ({
        tier: TIER_NUMBERS[t.tier],
        hits: big(t.hits),
        misses: big(t.misses),
        hitRate: t.hitRate,
        sets: big(t.sets),
        deletes: big(t.deletes),
        entries: big(t.entries),
        bytes: big(t.bytes),
        evictionsSize: big(t.evictionsSize),
        evictionsCount: big(t.evictionsCount),
        expirations: big(t.expirations),
      })),
    })),
  };
}

/** Bytes one missing key takes in a StreamGetResponse: its UTF-8, its field tag and its length (a varint of at most 5 bytes). */
function missingKeyBytes(key: string): number {
  return Buffer.byteLength(key, "utf8") + 6;
}

/** One StreamGet response message to build: hits to decode (`hitBytes` in a response, together), and missing keys. */
interface StreamGetPart {
  hits: Hit[];
  hitBytes: number;
  missing: string[];
}

/**
 * The messages that answer one StreamGet request: the hits in order, then the
 * missing keys, packed into consecutive messages of at most `budget` response
 * bytes each (a single item larger than that goes alone). A request that
 * found nothing and missed nothing (an empty batch) gets one empty message.
 */
function* streamGetParts(hits: readonly Hit[], missing: readonly string[], budget: number): Iterable<StreamGetPart> {
  let part: StreamGetPart = { hits: [], hitBytes: 0, missing: [] };
  let used = 0;
  /** Whether an item of `bytes` starts a new message: it does not fit, and this one holds something. */
  const full = (bytes: number) => used + bytes > budget && (part.hits.length > 0 || part.missing.length > 0);
  /** The message built so far; the next one starts empty. */
  const finish = () => {
    const done = part;
    part = { hits: [], hitBytes: 0, missing: [] };
    used = 0;
    return done;
  };
  for (const hit of hits) {
    if (full(hit.responseBytes)) yield finish();
    part.hits.push(hit);
    part.hitBytes += hit.responseBytes;
    used += hit.responseBytes;
  }
  for (const key of missing) {
    const bytes = missingKeyBytes(key);
    if (full(bytes)) yield finish();
    part.missing.push(key);
    used += bytes;
  }
  yield part;
}

/** Calls of one LeaseSession stream that run at once, by default. */
export const DEFAULT_SESSION_IN_FLIGHT = 64;
/** Calls that every LeaseSession stream of a server together run at once. */
export const MAX_SESSION_CALLS = 1024;

/**
 * StreamGet answers a request in messages of at most this many bytes, or
 * --max-message-bytes when that is lower (a value larger than that goes in
 * a message of its own), so that the client decodes one while the server
 * writes the next, and neither side holds a whole batch in one message. At
 * least SEND_SCRATCH_MIN_BYTES (core/wire/send-scratch.ts), so that a full
 * message is written through the reused send buffer.
 */
export const STREAM_MESSAGE_BYTES = 128 * 1024;

/** Room kept in every response message for its own framing (stream id, field tags and lengths). */
const MESSAGE_FRAMING_BYTES = 128;

/** The CacheService handlers: decode nothing, validate nothing, just map RPCs onto the engine. */
export function cacheServiceHandlers(
  engine: CacheEngine,
  watchOptions: WatchOptions = {},
  durableBreaker: () => string = () => "",
  maxMessageBytes = Infinity,
  tenantOf: (ctx: CallContext) => Tenant | undefined = () => undefined,
  session: LeaseSessionOptions = { maxInFlight: DEFAULT_SESSION_IN_FLIGHT, maxCallMs: 30_000, mapError: () => ({ code: 13, details: "internal error" }) },
): ServiceImpl<typeof CacheService> {
  const responseBudget = maxMessageBytes - MESSAGE_FRAMING_BYTES;
  const streamMessageBudget = Math.min(responseBudget, STREAM_MESSAGE_BYTES - MESSAGE_FRAMING_BYTES);
  /** Decoded response bytes of all calls together: two messages' worth. */
  const decoding = new ResponseBudget(Number.isFinite(maxMessageBytes) ? 2 * maxMessageBytes : Number.MAX_SAFE_INTEGER);
  /** The scope of a write: the call's, and the quota of its token. */
  const writeScope = (ctx: CallContext): CallScope => {
    const tenant = tenantOf(ctx);
    if (tenant === undefined) return ctx;
    return {
      get signal() {
        return ctx.signal;
      },
      get cancelReason() {
        return ctx.cancelReason;
      },
      onCancel: (listener) => ctx.onCancel(listener),
      deadline: ctx.deadline,
      tenant,
    };
  };
  const handlers: ServiceImpl<typeof CacheService> = {
    get(req, ctx) {
      const now = engine.getNow(req.namespace, req.key);
      if (now !== NEEDS_ASYNC) return toGetResponse(now, engine.bus.streamId);
      return engine.get(req.namespace, req.key, ctx).then((found) => toGetResponse(found, engine.bus.streamId));
    },
    async set(req, ctx) {
      const entry: ValueToSet = { key: req.key, value: req.value, contentType: req.contentType, ttlMs: ttlOf(req.ttlMs), graceMs: ttlOf(req.graceMs) };
      if (req.leaseToken !== "") entry.leaseToken = req.leaseToken;
      if (req.tags.length > 0) entry.tags = req.tags;
      if (req.writerId !== "") {
        checkWriterId(req.writerId);
        entry.origin = { writerId: req.writerId, writeSeq: req.writeSeq };
      }
      const { degraded, ttlMs } = await engine.set(req.namespace, entry, writeScope(ctx));
      return { degraded, ttlMs: BigInt(ttlMs) };
    },
    async delete(req, ctx) {
      return { deleted: await engine.delete(req.namespace, req.key, ctx) };
    },
    async has(req, ctx) {
      return { found: await engine.has(req.namespace, req.key, ctx) };
    },
    async touch(req, ctx) {
      return { found: await engine.touch(req.namespace, req.key, ttlOf(req.ttlMs), ctx) };
    },
    async getMany(req, ctx) {
      const hits = await engine.lookupMany(req.namespace, req.keys, ctx);
      const bytes = checkResponseSize(hits, responseBudget);
      const release = await decoding.acquire(bytes, ctx.signal);
      try {
        return { entries: engine.decodeMany(hits).map(toFoundEntry), streamId: engine.bus.streamId };
      } finally {
        release();
      }
    },
    async setMany(req, ctx) {
      return engine.setMany(req.namespace, req.entries.map(toValue), writeScope(ctx));
    },
    async deleteMany(req, ctx) {
      return { deleted: await engine.deleteMany(req.namespace, req.keys, ctx) };
    },
    async invalidateTags(req, ctx) {
      await engine.invalidateTags(req.namespace, req.tags, ctx);
      return {};
    },
    async clear(req, ctx) {
      await engine.clear(req.namespace, ctx);
      return {};
    },
    async stats(req) {
      const budget = engine.budget;
      const footprint = engine.durableFootprint();
      return {
        ...toStats(engine.stats(req.namespace || undefined)),
        durableBreaker: durableBreaker(),
        memoryBudgetBytes: big(budget?.maxBytes ?? 0),
        memoryUsedBytes: big(budget?.usedBytes ?? 0),
        memoryBudgetEvictions: big(budget?.evictions ?? 0),
        namespacesHeld: big(engine.namespaceCount),
        ...(footprint && { durableEntries: big(footprint.entries), durableBytes: big(footprint.bytes) }),
      };
    },
    async *streamGet(requests, ctx) {
      for await (const req of requests) {
        const missing: string[] = [];
        const hits = await engine.lookupMany(req.namespace, req.keys, ctx, missing);
        for (const part of streamGetParts(hits, missing, streamMessageBudget)) {
          if (part.hits.length === 0) {
            yield { entries: [], missing: part.missing };
            continue;
          }
          const release = await decoding.acquire(part.hitBytes, ctx.signal);
          try {
            yield streamGetResponseOf(engine.placeMany(part.hits), part.missing);
          } finally {
            release();
          }
        }
      }
    },
    watch(req, ctx) {
      return watchStream(engine.bus, req, ctx, watchOptions);
    },
    async getOrLease(req, ctx) {
      const { found, leaseToken } = await engine.getOrLease(req.namespace, req.key, req.leaseMs, req.waitMs, ctx, req.waitOnStale, req.refreshAheadMs);
      const ttlJitterPpm = jitterPpm(engine.ttlJitter(req.namespace));
      return { ...toGetResponse(found, engine.bus.streamId), ...(leaseToken && { leaseToken }), ...(ttlJitterPpm > 0 && { ttlJitterPpm }) };
    },
    async releaseLease(req) {
      return { released: await engine.releaseLease(req.namespace, req.key, req.leaseToken) };
    },
    async streamSet(requests, ctx) {
      let stored = 0;
      let degraded = false;
      for await (const req of requests) {
        const outcome = await engine.setMany(req.namespace, req.entries.map(toValue), writeScope(ctx));
        stored += outcome.stored;
        degraded ||= outcome.degraded;
      }
      return { stored: BigInt(stored), degraded };
    },
    leaseSession(requests, ctx) {
      return leaseSession(requests, ctx, handlers, session);
    },
  };
  return handlers;
}
