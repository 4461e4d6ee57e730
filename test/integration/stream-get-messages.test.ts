import { randomBytes } from "node:crypto";
import { fromBinary, toBinary, create } from "@bufbuild/protobuf";
import { Client, Metadata, credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StreamGetRequestSchema, StreamGetResponseSchema, type StreamGetResponse } from "../../gen/tiercache/v1/cache_pb.js";
import { STREAM_MESSAGE_BYTES } from "../../server/rpc/cache-service.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/** The StreamGet response messages to `batches`, each a request message, as a bare grpc-js client sees them. */
async function streamGetMessages(address: string, batches: string[][]): Promise<{ message: StreamGetResponse; bytes: number }[]> {
  const client = new Client(address, credentials.createInsecure());
  try {
    const call = client.makeBidiStreamRequest(
      "/tiercache.v1.CacheService/StreamGet",
      (request: Uint8Array) => Buffer.from(request),
      (bytes: Buffer) => ({ message: fromBinary(StreamGetResponseSchema, bytes), bytes: bytes.byteLength }),
      new Metadata(),
      { deadline: Date.now() + 10_000 },
    );
    for (const keys of batches) call.write(toBinary(StreamGetRequestSchema, create(StreamGetRequestSchema, { keys })));
    call.end();
    const received: { message: StreamGetResponse; bytes: number }[] = [];
    for await (const response of call) received.push(response as { message: StreamGetResponse; bytes: number });
    return received;
  } finally {
    client.close();
  }
}

describe("StreamGet answers a large batch in several messages of bounded size", () => {
  let ts: TestServer;
  const keys = Array.from({ length: 400 }, (_, i) => `msg:${String(i).padStart(4, "0")}`);
  const values = new Map(keys.map((key, i) => [key, randomBytes(900 + (i % 300))]));
  const large = randomBytes(STREAM_MESSAGE_BYTES + 1000);

  beforeAll(async () => {
    ts = await startTestServer({ storage: "memory" });
    await ts.client.setMany(keys.map((key) => [key, values.get(key)!] as const));
    await ts.client.set("large", large);
  });
  afterAll(async () => {
    await ts.dispose();
  });

  it("splits a batch whose values exceed STREAM_MESSAGE_BYTES, keeps the hits in order and sends the misses after them", async () => {
    const batch = [...keys.slice(0, 200), "absent:1", ...keys.slice(200), "absent:2"];
    const received = await streamGetMessages(ts.server.address, [batch, keys.slice(0, 3)]);
    const totalValueBytes = keys.reduce((sum, key) => sum + values.get(key)!.byteLength, 0);
    expect(received.length).toBeGreaterThanOrEqual(Math.ceil(totalValueBytes / STREAM_MESSAGE_BYTES) + 1);
    for (const { bytes } of received) expect(bytes).toBeLessThanOrEqual(STREAM_MESSAGE_BYTES);
    const first = received.slice(0, -1);
    expect(first.at(-1)!.message.missing).toEqual(["absent:1", "absent:2"]);
    for (const { message } of first.slice(0, -1)) expect(message.missing).toEqual([]);
    const entries = first.flatMap(({ message }) => message.entries);
    expect(entries.map((entry) => entry.key)).toEqual(keys);
    for (const entry of entries) expect(Buffer.compare(Buffer.from(entry.value), values.get(entry.key)!), entry.key).toBe(0);
    expect(received.at(-1)!.message.entries.map((entry) => entry.key)).toEqual(keys.slice(0, 3));
  });

  it("keeps a batch of many long missing keys within STREAM_MESSAGE_BYTES per message too", async () => {
    const absent = Array.from({ length: 900 }, (_, i) => `absent:${i}:${"é".repeat(400)}`);
    const batch = [keys[0]!, ...absent, keys[1]!];
    const received = await streamGetMessages(ts.server.address, [batch, []]);
    for (const { bytes } of received) expect(bytes).toBeLessThanOrEqual(STREAM_MESSAGE_BYTES);
    expect(received.length).toBeGreaterThan(2);
    expect(received.slice(0, -1).flatMap(({ message }) => message.entries.map((entry) => entry.key))).toEqual([keys[0], keys[1]]);
    expect(received.slice(0, -1).flatMap(({ message }) => message.missing)).toEqual(absent);
    expect(received.at(-1)!.message).toMatchObject({ entries: [], missing: [] });
  });

  it("sends a value larger than STREAM_MESSAGE_BYTES in a message of its own", async () => {
    const received = await streamGetMessages(ts.server.address, [["msg:0000", "large", "msg:0001"]]);
    expect(received.map(({ message }) => message.entries.map((entry) => entry.key))).toEqual([["msg:0000"], ["large"], ["msg:0001"]]);
    expect(Buffer.compare(Buffer.from(received[1]!.message.entries[0]!.value), large)).toBe(0);
  });
});

describe("StreamGet within a --max-message-bytes below STREAM_MESSAGE_BYTES", () => {
  const maxMessageBytes = 64 * 1024;
  let ts: TestServer;
  const keys = Array.from({ length: 120 }, (_, i) => `small:${String(i).padStart(3, "0")}:${"k".repeat(40)}`);
  const values = new Map(keys.map((key) => [key, randomBytes(1000)]));
  const compressible = Buffer.alloc(60_000, 7);

  beforeAll(async () => {
    ts = await startTestServer({ storage: "lmdb", maxMessageBytes, maxValueBytes: 61_000 });
    for (let i = 0; i < keys.length; i += 30) await ts.client.setMany(keys.slice(i, i + 30).map((key) => [key, values.get(key)!] as const));
    await ts.client.set("compressible", compressible);
  });
  afterAll(async () => {
    await ts.dispose();
  });

  it("answers hits, a value stored compressed and many long misses in messages within the limit", async () => {
    const absent = Array.from({ length: 100 }, (_, i) => `absent:${i}:${"m".repeat(500)}`);
    const batch = ["compressible", ...keys.slice(0, 60), ...absent, ...keys.slice(60)];
    expect(toBinary(StreamGetRequestSchema, create(StreamGetRequestSchema, { keys: batch })).byteLength).toBeLessThan(maxMessageBytes);
    const received = await streamGetMessages(ts.server.address, [batch]);
    for (const { bytes } of received) expect(bytes).toBeLessThanOrEqual(maxMessageBytes);
    const entries = received.flatMap(({ message }) => message.entries);
    expect(entries.map((entry) => entry.key)).toEqual(["compressible", ...keys]);
    expect(Buffer.compare(Buffer.from(entries[0]!.value), compressible)).toBe(0);
    expect(received.flatMap(({ message }) => message.missing)).toEqual(absent);
    let seen = 0;
    for await (const [key, value] of ts.client.streamGet<Buffer>(batch, { batchSize: batch.length })) {
      if (key === "compressible") expect(Buffer.compare(value!, compressible)).toBe(0);
      else if (key.startsWith("absent:")) expect(value).toBeUndefined();
      else expect(Buffer.compare(value!, values.get(key)!)).toBe(0);
      seen++;
    }
    expect(seen).toBe(batch.length);
  });
});
