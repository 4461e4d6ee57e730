/**
 * The least server on tiercache's stack that does a Redis-tier Get's work
 * (`node bench/compare-builds.js <dist> stack-min`): CacheService.Get over
 * grpc-js, the request decoded inside the handler and the response encoded
 * with tiercache's codec (core/wire) into its send scratch, as tiercache's
 * server encodes it, the key checked, a 1-entry lru-cache
 * looked up and the value promoted into it, the GET behind the floor's
 * failure policy (bench/lib/guarded-get.js). SetMany only seeds Redis for
 * the load child. At start it sets the process up as tiercache's server
 * does (V8's allocation-site pretenuring off, glibc's malloc thresholds
 * raised: server/pretenuring.ts, server/malloc-thresholds.ts), which costs
 * nothing per call. Nothing else: no namespaces, stats, budgets, coherence,
 * tracing or auth.
 *
 * Without `redisUrl` it is the least server of a memory-tier Get (the
 * `service-get` scenario): SetMany stores copies of the values in an
 * lru-cache per namespace, large enough for every key, and Get answers from
 * it alone.
 */
import { status } from "@grpc/grpc-js";
import { LRUCache } from "lru-cache";
import { boundServer, rawMethod, rawServer } from "../lib/bound-server.js";
import { serveChild } from "../lib/child.js";
import { guardedGet } from "../lib/guarded-get.js";
import { importDist } from "../lib/paths.js";

await serveChild(async (config) => {
  (await importDist("server/pretenuring.js")).avoidPretenuring();
  (await importDist("server/malloc-thresholds.js")).raiseMallocThresholds();
  const gen = await importDist("gen/tiercache/v1/cache_pb.js");
  const { messageCodec } = await importDist("core/wire/message-codec.js");
  const getRequest = messageCodec(gen.GetRequestSchema);
  const getResponse = messageCodec(gen.GetResponseSchema);
  const setManyRequest = messageCodec(gen.SetManyRequestSchema);
  const setManyResponse = messageCodec(gen.SetManyResponseSchema);
  const redis = config.redisUrl ? await connected(config.redisUrl) : undefined;
  const guarded = redis ? await guardedGet(redis) : undefined;
  const memory = new LRUCache({ max: 1 });
  /** Without Redis: namespace -> its lru-cache, so that a key is looked up as it came. */
  const namespaces = new Map();
  const server = rawServer();
  const bad = (callback, details) => callback({ code: status.INVALID_ARGUMENT, details });
  server.addService(
    { get: rawMethod("/tiercache.v1.CacheService/Get"), setMany: rawMethod("/tiercache.v1.CacheService/SetMany") },
    {
      get: (call, callback) => {
        let request;
        try {
          request = getRequest.decode(call.request);
        } catch {
          return bad(callback, "undecodable");
        }
        const key = request.key;
        if (key === "" || Buffer.byteLength(key) > 1024) return bad(callback, "bad key");
        const id = redis ? `stackmin:${request.namespace || "default"}:${key}` : key;
        const held = (redis ? memory : namespaces.get(request.namespace || "default"))?.get(id);
        // Into the shared send scratch, as tiercache's server encodes: grpc-js copies the bytes before the next call.
        const answer = (stored, tier) =>
          callback(null, getResponse.encodeToSend(stored === undefined ? { found: false } : { found: true, value: stored.value, contentType: stored.contentType, tier }));
        if (held !== undefined) return answer(held, gen.Tier.MEMORY);
        if (!guarded) return answer(undefined);
        guarded(call, id).then(
          (raw) => {
            if (raw === null) return answer(undefined);
            const split = raw.indexOf(0);
            const stored = { contentType: raw.toString("latin1", 0, split), value: raw.subarray(split + 1) };
            memory.set(id, stored);
            answer(stored, gen.Tier.REDIS);
          },
          (err) => callback({ code: status.UNAVAILABLE, details: String(err.message) }),
        );
      },
      setMany: (call, callback) => {
        const request = setManyRequest.decode(call.request);
        if (!redis) {
          const namespace = request.namespace || "default";
          if (!namespaces.has(namespace)) namespaces.set(namespace, new LRUCache({ max: config.memoryEntries ?? 100_000 }));
          for (const entry of request.entries) namespaces.get(namespace).set(entry.key, { contentType: entry.contentType, value: Buffer.from(entry.value) });
          return callback(null, setManyResponse.encode({ stored: request.entries.length }));
        }
        const pipeline = redis.pipeline();
        for (const entry of request.entries) pipeline.set(`stackmin:${request.namespace || "default"}:${entry.key}`, Buffer.concat([Buffer.from(`${entry.contentType}\0`, "latin1"), entry.value]));
        pipeline.exec().then(
          () => callback(null, setManyResponse.encode({ stored: request.entries.length })),
          (err) => callback({ code: status.UNAVAILABLE, details: String(err.message) }),
        );
      },
    },
  );
  return boundServer(server, redis);
});

/** An ioredis client that fails fast, as tiercache's connection does. */
async function connected(url) {
  const { Redis } = await import("ioredis");
  const redis = new Redis(url, { lazyConnect: true, enableAutoPipelining: false, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  await redis.connect();
  return redis;
}
