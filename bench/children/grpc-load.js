/**
 * Load generator: drives the tiercache server through the project's client
 * (CacheClient: protobuf on both sides) and the echo baseline through a bare
 * grpc-js client, with identical deadlines and metadata per call.
 *
 * config: { tcAddress?, tcBAddress?, stackMinAddress?, echoAddress?, guardedAddress?, keys, valueBytes, getRequestBytes,
 *           bulkKeys, bulkBatch, bulkRequestBytes, echoResponsesPerMessage, seed }
 */
import { Client, Metadata, credentials } from "@grpc/grpc-js";
import { serveChild } from "../lib/child.js";
import { importDist } from "../lib/paths.js";
import { latencySummary } from "../lib/stats.js";
import { mulberry32, randomBytes } from "../lib/prng.js";

const passThrough = (bytes) => bytes;
const DEADLINE_MS = 5000;
const MAX_SAMPLES = 1 << 21;

await serveChild(async (config) => {
  const random = mulberry32(config.seed ?? 7);
  const keys = Array.from({ length: config.keys ?? 10_000 }, (_, i) => `key:${String(i).padStart(8, "0")}`);
  const value = randomBytes(config.valueBytes ?? 1024, random);
  const order = Int32Array.from({ length: 1 << 16 }, () => Math.floor(random() * keys.length));
  let cursor = 0;
  const nextKey = () => keys[order[cursor++ & 0xffff]];
  const bulkKeys = keys.slice(0, config.bulkKeys ?? 1000);

  /** A CacheClient of the server at `address`, which it first gives every key. */
  async function seededClient(address) {
    const { CacheClient } = await importDist("client/index.js");
    const client = new CacheClient({ address, timeoutMs: DEADLINE_MS });
    for (let i = 0; i < keys.length; i += 1000) {
      await client.setMany(keys.slice(i, i + 1000).map((key) => [key, value]));
    }
    const check = await client.get(keys[0]);
    if (!Buffer.isBuffer(check) || !check.equals(value)) throw new Error("tiercache did not return the value it was given");
    return client;
  }
  const tc = config.tcAddress ? await seededClient(config.tcAddress) : undefined;
  // A second tiercache server, another build of it (bench/compare-builds.js), through the same client code.
  const tcB = config.tcBAddress ? await seededClient(config.tcBAddress) : undefined;
  // The least server on tiercache's stack (bench/children/stack-min-server.js), through the same client code.
  const stackMin = config.stackMinAddress ? await seededClient(config.stackMinAddress) : undefined;

  // The same Get through a bare grpc-js client (request pre-encoded, response bytes not decoded):
  // tells the server's share of the overhead from the client's.
  let tcRaw;
  let rawGetRequests;
  if (config.tcAddress) {
    const { create, toBinary } = await import("@bufbuild/protobuf");
    const { GetRequestSchema } = await importDist("gen/tiercache/v1/cache_pb.js");
    rawGetRequests = keys.map((key) => Buffer.from(toBinary(GetRequestSchema, create(GetRequestSchema, { namespace: "default", key }))));
    tcRaw = new Client(config.tcAddress, credentials.createInsecure());
  }

  const echoRequest = Buffer.alloc(config.getRequestBytes ?? 24, 0x6b);
  const redisKeys = config.redisKeys ? keys.map((key) => Buffer.from(`bench:${key}`, "latin1")) : undefined;
  // The transport settings CacheClient uses, so that an echo is the same grpc-js with nothing on top.
  const { CLIENT_FLOW_CONTROL_WINDOW_BYTES } = await importDist("client/index.js");
  const echoClient = (address) =>
    address === undefined
      ? undefined
      : new Client(address, credentials.createInsecure(), {
          "grpc.max_receive_message_length": 16 * 1024 * 1024,
          "grpc-node.flow_control_window": CLIENT_FLOW_CONTROL_WINDOW_BYTES,
        });
  const echo = echoClient(config.echoAddress);
  const { channelUnaryCall } = await importDist("core/channel-unary-call.js");
  // The Redis-tier floor (echo-server's guardedGet): the same bare client, to another echo.
  const guarded = echoClient(config.guardedAddress);
  const bulkRequest = Buffer.alloc(config.bulkRequestBytes ?? 8000, 0x6b);

  const unaryCall = {
    tc: () => tc.get(nextKey()),
    "tc-b": () => tcB.get(nextKey()),
    "stack-min": () => stackMin.get(nextKey()),
    "tc-raw": () =>
      new Promise((resolve, reject) => {
        tcRaw.makeUnaryRequest("/tiercache.v1.CacheService/Get", passThrough, passThrough, rawGetRequests[order[cursor++ & 0xffff]], new Metadata(), { deadline: Date.now() + DEADLINE_MS }, (err, res) =>
          err ? reject(err) : resolve(res),
        );
      }),
    echo: () => echoUnary(echo),
    // The echo called as CacheClient calls the server (core/channel-unary-call.ts): on the channel, below grpc-js's
    // interceptor and call-event layers; what the least grpc-js client does per call.
    "echo-channel": () =>
      channelUnaryCall({
        client: echo,
        path: "/bench.Echo/Unary",
        deadline: () => Date.now() + DEADLINE_MS,
        encode: () => echoRequest,
        decode: passThrough,
        metadata: new Metadata(),
        signal: undefined,
      }),
    "echo-guarded": () => echoUnary(guarded),
  };

  function echoUnary(client) {
    return new Promise((resolve, reject) => {
      const request = redisKeys ? redisKeys[order[cursor++ & 0xffff]] : echoRequest;
      client.makeUnaryRequest("/bench.Echo/Unary", passThrough, passThrough, request, new Metadata(), { deadline: Date.now() + DEADLINE_MS }, (err, res) =>
        err ? reject(err) : resolve(res),
      );
    });
  }

  /** Response messages the echo sends per request message (more than one when it splits its answers: bidiSplitBytes). */
  const echoResponsesPerMessage = config.echoResponsesPerMessage ?? 1;

  function echoPacked(messages) {
    const expected = messages * echoResponsesPerMessage;
    return new Promise((resolve, reject) => {
      const call = echo.makeBidiStreamRequest("/bench.Echo/Bidi", passThrough, passThrough, new Metadata(), { deadline: Date.now() + DEADLINE_MS });
      let received = 0;
      call.on("data", () => {
        if (++received === expected) call.end();
      });
      call.on("error", reject);
      call.on("end", () => (received === expected ? resolve(received) : reject(new Error(`echo stream ended after ${received} of ${expected} messages`))));
      for (let i = 0; i < messages; i++) call.write(bulkRequest);
    });
  }

  async function streamGet(batchSize, client = tc) {
    let count = 0;
    for await (const [, found] of client.streamGet(bulkKeys, { batchSize })) if (found !== undefined) count++;
    if (count !== bulkKeys.length) throw new Error(`StreamGet found ${count} of ${bulkKeys.length} keys`);
    return count;
  }

  const bulkOp = {
    "tc-batched": () => streamGet(config.bulkBatch ?? 500),
    "stack-min-batched": () => streamGet(config.bulkBatch ?? 500, stackMin),
    "tc-perkey": () => streamGet(1),
    "echo-packed": () => echoPacked(Math.ceil(bulkKeys.length / (config.bulkBatch ?? 500))),
  };

  /** Closed loop: `concurrency` workers, each one call at a time, until the time or call budget is used. */
  async function closedLoop(call, concurrency, durationMs, maxCalls, keepSamples = false) {
    const samples = new Float64Array(Math.max(1, Math.min(MAX_SAMPLES, maxCalls)));
    let calls = 0;
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    const end = start + durationMs;
    const worker = async () => {
      while (calls < maxCalls && performance.now() < end) {
        const i = calls++ % samples.length;
        const t0 = performance.now();
        await call();
        samples[i] = (performance.now() - t0) * 1000;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsedMs = performance.now() - start;
    const cpu = process.cpuUsage(cpu0);
    const recorded = Math.min(calls, samples.length);
    const { p50, p99 } = latencySummary(samples, recorded);
    const result = { calls, elapsedMs, opsPerSec: (calls / elapsedMs) * 1000, p50, p99, loadCpuMicros: cpu.user + cpu.system };
    if (keepSamples) result.samples = samples.slice(0, recorded);
    return result;
  }

  return {
    info: { keys: keys.length },
    /** { target: "tc" | "echo", concurrency, durationMs, maxCalls } -> { calls, elapsedMs, opsPerSec, p50, p99 (µs), loadCpuMicros (this process's CPU) } */
    unary: ({ target, concurrency = 1, durationMs = 1000, maxCalls = Number.MAX_SAFE_INTEGER, samples = false }) =>
      closedLoop(unaryCall[target], concurrency, durationMs, maxCalls, samples),
    /** { target: "tc-batched" | "tc-perkey" | "stack-min-batched" | "echo-packed", durationMs, maxOps } -> per bulk op of `bulkKeys` keys */
    bulk: async ({ target, durationMs = 1000, maxOps = Number.MAX_SAFE_INTEGER }) => {
      const result = await closedLoop(bulkOp[target], 1, durationMs, maxOps);
      return { ...result, keys: bulkKeys.length, keysPerSec: result.opsPerSec * bulkKeys.length, msPerOp: result.elapsedMs / result.calls };
    },
    /** StreamSet then (unless `read` is false) StreamGet of `total` keys (`bulk:<i>`), `batchSize` per message: keys/s of each. */
    async stream({ total, batchSize = 1000, ttlMs = 0, read = true }) {
      const names = Array.from({ length: total }, (_, i) => `bulk:${i}`);
      let t0 = performance.now();
      const stored = await tc.streamSet(names.map((name) => [name, value]), { batchSize, ...(ttlMs > 0 && { ttl: ttlMs }) });
      const setMs = performance.now() - t0;
      if (stored !== total) throw new Error(`StreamSet stored ${stored} of ${total}`);
      if (!read) return { setKeysPerSec: (total / setMs) * 1000 };
      t0 = performance.now();
      let found = 0;
      for await (const [, v] of tc.streamGet(names, { batchSize })) if (v !== undefined) found++;
      const getMs = performance.now() - t0;
      if (found !== total) throw new Error(`StreamGet found ${found} of ${total}`);
      return { setKeysPerSec: (total / setMs) * 1000, getKeysPerSec: (total / getMs) * 1000 };
    },
    stop() {
      tc?.close();
      tcB?.close();
      stackMin?.close();
      tcRaw?.close();
      echo?.close();
    },
  };
});
