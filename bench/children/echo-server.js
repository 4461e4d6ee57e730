/**
 * Baseline server: a bare @grpc/grpc-js server with no protobuf, answering
 * with preallocated buffers of the same sizes as tiercache's messages.
 *
 * - /bench.Echo/Unary: one response of `unaryResponseBytes`; with `redisUrl`
 *   the handler first awaits one ioredis GET of the key in the request.
 * - /bench.Echo/Bidi: one response of `bidiResponseBytes` per request message
 *   ("packed" echo: many keys' worth of bytes per message); ends when the client does.
 * - /bench.Echo/Store (needs `redisUrl`): the request is `key \0 value`; one
 *   ioredis SET with PX, then a one-byte response.
 * - /bench.Echo/Session (bidi, needs `redisUrl`): per request message, in
 *   order: `0 key` = one GET, answered with `unaryResponseBytes`; `1 key \0 value`
 *   = one SET with PX, answered with one byte.
 *
 * With `bidiCopies` ({ values, valueBytes, perMessage }), Bidi builds each
 * response instead of sending the prebuilt one: it copies `perMessage` of
 * `values` stored values of `valueBytes` (allocated one by one at start, as a
 * cache holds them) into a reused buffer of `bidiResponseBytes`, in turn,
 * which grpc-js then copies into its frame as it does tiercache's messages.
 * That is the least a server that serves stored values must do per message.
 *
 * With `bidiSplitBytes`, Bidi writes each response as consecutive messages of
 * at most that many bytes (subarrays of it; grpc-js copies each into its
 * frame when written), as tiercache's StreamGet answers a batch.
 *
 * With `guardedGet` (and `redisUrl`), Unary's GET goes through the least
 * failure policy ARCHITECTURE.md asks of a remote tier, as RedisGuard runs a
 * first attempt: a check that the call is neither cancelled nor past its
 * deadline, an opossum breaker (with the options RedisGuard gives it), a
 * per-attempt timeout (a timer set and cleared, bounded by the deadline) and
 * a listener on the call's cancellation, removed when the GET settles. No
 * retry runs: every GET succeeds. Its ioredis client fails fast as
 * tiercache's does, but like the plain echo's it writes every command at
 * once: tiercache's connection writes the commands issued while others are
 * in flight together, once per turn of the event loop
 * (server/tiers/write-coalescing.ts). A floor for the Redis-tier
 * Get: what the policy alone costs, without anything else tiercache does.
 *
 * With `raiseMallocThresholds`, it first does what tiercache's server does
 * at start (server/malloc-thresholds.ts), for rows that show how much of a
 * ratio that alone explains.
 */
import { boundServer, rawMethod, rawServer } from "../lib/bound-server.js";
import { serveChild } from "../lib/child.js";
import { guardedGet } from "../lib/guarded-get.js";
import { importDist } from "../lib/paths.js";

await serveChild(async (config) => {
  if (config.raiseMallocThresholds) (await importDist("server/malloc-thresholds.js")).raiseMallocThresholds();
  const unaryResponse = Buffer.alloc(config.unaryResponseBytes ?? 1024, 0x61);
  const bidiResponse = Buffer.alloc(config.bidiResponseBytes ?? 1024, 0x62);
  const copies = config.bidiCopies;
  const stored = copies ? Array.from({ length: copies.values }, (_, i) => Buffer.alloc(copies.valueBytes, i & 0xff)) : [];
  const stride = copies ? Math.floor(bidiResponse.byteLength / copies.perMessage) : 0;
  let nextStored = 0;
  /** The Bidi response: the prebuilt one, or one assembled from stored values (see bidiCopies). */
  const bidiAnswer = () => {
    if (!copies) return bidiResponse;
    for (let i = 0; i < copies.perMessage; i++) {
      bidiResponse.set(stored[nextStored], i * stride);
      nextStored = (nextStored + 1) % stored.length;
    }
    return bidiResponse;
  };
  let redis;
  if (config.redisUrl) {
    const { Redis } = await import("ioredis");
    // The guarded echo fails fast as tiercache's connection does (server/tiers/redis-connection.ts); that matters only when Redis is away.
    const failFast = config.guardedGet ? { enableOfflineQueue: false, maxRetriesPerRequest: 0 } : {};
    redis = new Redis(config.redisUrl, { lazyConnect: true, enableAutoPipelining: config.autoPipelining ?? false, ...failFast });
    await redis.connect();
  }
  const getGuarded = config.guardedGet && redis ? await guardedGet(redis) : undefined;
  const server = rawServer();
  const ack = Buffer.alloc(1);
  /** SET of a `key \0 value` request. */
  const store = (request) => {
    const split = request.indexOf(0);
    return redis.set(request.subarray(0, split).toString("latin1"), request.subarray(split + 1), "PX", 3_600_000);
  };
  server.addService(
    {
      unary: rawMethod("/bench.Echo/Unary"),
      bidi: rawMethod("/bench.Echo/Bidi", true, true),
      store: rawMethod("/bench.Echo/Store"),
      session: rawMethod("/bench.Echo/Session", true, true),
    },
    {
      unary: getGuarded
        ? (call, callback) => {
            getGuarded(call, call.request.toString("latin1")).then(
              () => callback(null, unaryResponse),
              (err) => callback(err),
            );
          }
        : redis
        ? (call, callback) => {
            redis.getBuffer(call.request.toString("latin1")).then(
              (value) => callback(null, value === null ? unaryResponse : unaryResponse),
              (err) => callback(err),
            );
          }
        : (call, callback) => callback(null, unaryResponse),
      bidi: (call) => {
        const split = config.bidiSplitBytes;
        call.on("data", () => {
          const answer = bidiAnswer();
          if (!split) call.write(answer);
          else for (let at = 0; at < answer.byteLength; at += split) call.write(answer.subarray(at, at + split));
        });
        call.on("end", () => call.end());
        call.on("error", () => {});
      },
      store: (call, callback) => {
        store(call.request).then(
          () => callback(null, ack),
          (err) => callback(err),
        );
      },
      session: (call) => {
        let last = Promise.resolve();
        call.on("data", (request) => {
          const answer = request[0] === 0 ? redis.getBuffer(request.subarray(1).toString("latin1")).then(() => unaryResponse) : store(request.subarray(1)).then(() => ack);
          last = Promise.all([last, answer]).then(([, response]) => call.write(response));
        });
        call.on("end", () => last.then(() => call.end()));
        call.on("error", () => {});
      },
    },
  );
  return boundServer(server, redis);
});
