/**
 * The least server on tiercache's stack that answers a StreamGet (the
 * `stream-get` scenario's information row): CacheService.StreamGet over
 * grpc-js, each request decoded inside the handler with tiercache's codec
 * (core/wire), every key looked up in an lru-cache of stored values, and the
 * found entries written with tiercache's own StreamGet writer
 * (server/rpc/found-entries-message.js), one response message per request.
 * SetMany fills the lru-cache and Get reads it, for the load child's check. It starts as tiercache's
 * server does (pretenuring off, malloc thresholds raised). Nothing else: no
 * namespaces, expiry, envelopes, stats, budgets, coherence, tracing or auth.
 */
import { status } from "@grpc/grpc-js";
import { LRUCache } from "lru-cache";
import { boundServer, rawMethod, rawServer } from "../lib/bound-server.js";
import { serveChild } from "../lib/child.js";
import { importDist } from "../lib/paths.js";

await serveChild(async () => {
  (await importDist("server/pretenuring.js")).avoidPretenuring();
  (await importDist("server/malloc-thresholds.js")).raiseMallocThresholds();
  const gen = await importDist("gen/tiercache/v1/cache_pb.js");
  const { messageCodec } = await importDist("core/wire/message-codec.js");
  const { streamGetResponseOf } = await importDist("server/rpc/found-entries-message.js");
  const streamGetRequest = messageCodec(gen.StreamGetRequestSchema);
  const getRequest = messageCodec(gen.GetRequestSchema);
  const getResponse = messageCodec(gen.GetResponseSchema);
  const setManyRequest = messageCodec(gen.SetManyRequestSchema);
  const setManyResponse = messageCodec(gen.SetManyResponseSchema);
  const stored = new LRUCache({ max: 100_000 });
  const server = rawServer();
  server.addService(
    {
      streamGet: rawMethod("/tiercache.v1.CacheService/StreamGet", true, true),
      setMany: rawMethod("/tiercache.v1.CacheService/SetMany"),
      get: rawMethod("/tiercache.v1.CacheService/Get"),
    },
    {
      streamGet: (call) => {
        call.on("data", (bytes) => {
          let request;
          try {
            request = streamGetRequest.decode(bytes);
          } catch {
            call.destroy({ code: status.INVALID_ARGUMENT, details: "undecodable" });
            return;
          }
          const namespace = request.namespace || "default";
          const entries = [];
          const missing = [];
          for (const key of request.keys) {
            const found = stored.get(`${namespace}:${key}`);
            if (found === undefined) missing.push(key);
            else entries.push({ key, bytes: found.value, valueStart: 0, contentTypeBytes: found.contentTypeBytes, ttlRemainingMs: 0, tier: "memory", stale: false, freshRemainingMs: 0 });
          }
          call.write(streamGetResponseOf(entries, missing).bytes());
        });
        call.on("end", () => call.end());
        call.on("error", () => {});
      },
      get: (call, callback) => {
        const request = getRequest.decode(call.request);
        const found = stored.get(`${request.namespace || "default"}:${request.key}`);
        callback(null, getResponse.encode(found === undefined ? { found: false } : { found: true, value: found.value, contentType: found.contentTypeBytes.toString(), tier: gen.Tier.MEMORY }));
      },
      setMany: (call, callback) => {
        const request = setManyRequest.decode(call.request);
        const namespace = request.namespace || "default";
        for (const entry of request.entries) stored.set(`${namespace}:${entry.key}`, { value: Buffer.from(entry.value), contentTypeBytes: Buffer.from(entry.contentType) });
        callback(null, setManyResponse.encode({ stored: request.entries.length }));
      },
    },
  );
  return boundServer(server);
});
