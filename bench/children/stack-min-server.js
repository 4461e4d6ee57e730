/**
 * The least server on tiercache's stack that does a Redis-tier Get's work
 * (`node bench/compare-builds.js <dist> stack-min`): CacheService.Get over
 * grpc-js, the request decoded inside the handler and the response encoded
 * with tiercache's codec (core/wire), the key checked, a 1-entry lru-cache
 * looked up and the value promoted into it, the GET behind the floor's
 * failure policy (bench/lib/guarded-get.js). SetMany only seeds Redis for
 * the load child. At start it sets the process up as tiercache's server
 * does (V8's allocation-site pretenuring off, glibc's malloc thresholds
 * raised: server/pretenuring.ts, server/malloc-thresholds.ts), which costs
 * nothing per call. Nothing else: no namespaces, stats, budgets, coherence,
 * tracing or auth.
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
  const { Redis } = await import("ioredis");
  const redis = new Redis(config.redisUrl, { lazyConnect: true, enableAutoPipelining: false, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
  await redis.connect();
  const guarded = await guardedGet(redis);
  const memory = new LRUCache({ max: 1 });
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
        const id = `stackmin:${request.namespace || "default"}:${key}`;
        const held = memory.get(id);
        const answer = (stored, tier) =>
          callback(null, getResponse.encode(stored === undefined ? { found: false } : { found: true, value: stored.value, contentType: stored.contentType, tier }));
        if (held !== undefined) return answer(held, gen.Tier.MEMORY);
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
