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

  it("splits a batch whose values exceed STREAM_MESSAGE_BYTES, keeps the keys in order and the misses in the first message", async () => {
    const batch = [...keys.slice(0, 200), "absent:1", ...keys.slice(200), "absent:2"];
    const received = await streamGetMessages(ts.server.address, [batch, keys.slice(0, 3)]);
    const totalValueBytes = keys.reduce((sum, key) => sum + values.get(key)!.byteLength, 0);
    expect(received.length).toBeGreaterThanOrEqual(Math.ceil(totalValueBytes / STREAM_MESSAGE_BYTES) + 1);
    for (const { bytes } of received) expect(bytes).toBeLessThanOrEqual(STREAM_MESSAGE_BYTES);
    const first = received.slice(0, -1);
    expect(first[0]!.message.missing).toEqual(["absent:1", "absent:2"]);
    for (const { message } of first.slice(1)) expect(message.missing).toEqual([]);
    const entries = first.flatMap(({ message }) => message.entries);
    expect(entries.map((entry) => entry.key)).toEqual(keys);
    for (const entry of entries) expect(Buffer.compare(Buffer.from(entry.value), values.get(entry.key)!), entry.key).toBe(0);
    expect(received.at(-1)!.message.entries.map((entry) => entry.key)).toEqual(keys.slice(0, 3));
  });

  it("sends a value larger than STREAM_MESSAGE_BYTES in a message of its own", async () => {
    const received = await streamGetMessages(ts.server.address, [["msg:0000", "large", "msg:0001"]]);
    expect(received.map(({ message }) => message.entries.map((entry) => entry.key))).toEqual([["msg:0000"], ["large"], ["msg:0001"]]);
    expect(Buffer.compare(Buffer.from(received[1]!.message.entries[0]!.value), large)).toBe(0);
  });
});
