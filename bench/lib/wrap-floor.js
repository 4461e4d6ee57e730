/**
 * Transport floors of `wrap` on a Zipf trace: what a function-result cache
 * over gRPC can reach at best, measured with a bare grpc-js client (no
 * protobuf) and the echo server (bench/children/echo-server.js) over the
 * run's Redis, with an lru-cache L1 of the same size as the subject's local
 * tier. Per L1 miss:
 *
 * - "unary-2": one awaited unary call (one Redis GET) and one unary call in
 *   the background (one Redis SET): the shape of wrap's GetOrLease + Set.
 * - "unary-1": the awaited call only (one round trip, nothing written).
 * - "stream-2": the same GET and SET as two messages on one long-lived
 *   bidi stream (answered in order: a GET's answer comes after the SET
 *   sent before it).
 *
 * As in wrap, a key is written once: at its first miss (Redis holds it after).
 */
import grpc from "@grpc/grpc-js";
import { LRUCache } from "lru-cache";
import { mulberry32, zipfSampler } from "./prng.js";

const passThrough = (bytes) => bytes;

/** A request `key \0 value` (SET), optionally after a one-byte message kind. */
function storeRequest(key, value, kind) {
  const body = Buffer.from(`${key}\u0000${JSON.stringify(value)}`, "latin1");
  return kind === undefined ? body : Buffer.concat([Buffer.of(kind), body]);
}

/** Runs the trace through the floor `mode`; resolves with ops/s (the background writes are awaited after the clock stops). */
export async function wrapFloorRun(address, { requests, keySpace, skew, l1Items, prefix }, mode) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const unary = (path, request) =>
    new Promise((resolve, reject) => client.makeUnaryRequest(path, passThrough, passThrough, request, (err, response) => (err ? reject(err) : resolve(response))));
  let session;
  const answers = [];
  if (mode === "stream-2") {
    session = client.makeBidiStreamRequest("/bench.Echo/Session", passThrough, passThrough);
    session.on("data", () => answers.shift()());
    session.on("error", () => {});
  }
  const ask = (request) => new Promise((resolve) => (answers.push(resolve), session.write(request)));
  const writes = new Set();
  const l1 = new LRUCache({ max: l1Items });
  const stored = new Set();
  const sample = zipfSampler(keySpace, skew, mulberry32(99));
  const trace = Array.from({ length: requests }, () => `${prefix}:${sample()}`);
  const payload = { id: 1, body: "x".repeat(1000) };
  const loader = async () => payload;
  const get = async (key) => {
    const hit = l1.get(key);
    if (hit !== undefined) return hit;
    if (mode === "stream-2") await ask(Buffer.from(`\u0000${key}`, "latin1"));
    else await unary("/bench.Echo/Unary", Buffer.from(key, "latin1"));
    const value = await loader();
    // Like wrap: a key Redis holds already (stored at an earlier miss, evicted from L1 since) is not written again.
    if (mode !== "unary-1" && !stored.has(key)) {
      stored.add(key);
      const write = mode === "stream-2" ? ask(storeRequest(key, value, 1)) : unary("/bench.Echo/Store", storeRequest(key, value)).catch(() => {});
      writes.add(write);
      void write.finally(() => writes.delete(write));
    }
    l1.set(key, value);
    return value;
  };
  try {
    for (let i = 0; i < Math.min(2000, requests); i++) await get(`warm:${trace[i]}`);
    const t0 = performance.now();
    for (let i = 0; i < requests; i++) await get(trace[i]);
    const ms = performance.now() - t0;
    await Promise.all(writes);
    return (requests / ms) * 1000;
  } finally {
    session?.end();
    client.close();
  }
}
