import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonSerializer, type CacheClient, type CacheClientOptions, type Serializer } from "../../client/index.js";
import { eventually } from "../helpers/eventually.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";
import { warmLocal } from "../helpers/warm-local.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ storage: "memory" });
});
afterAll(async () => {
  await t?.dispose();
});

/** True when `value` is a Buffer that holds exactly its own bytes (no larger buffer behind it). */
function ownsItsBytes(value: unknown): boolean {
  return Buffer.isBuffer(value) && value.byteOffset === 0 && value.buffer.byteLength === value.byteLength;
}

async function readerWithLocalTier(options: Partial<CacheClientOptions> = {}): Promise<CacheClient> {
  const reader = t.newClient({ localTier: true, ...options });
  await t.client.set("owned-bytes:warm", "w");
  await warmLocal(reader, "owned-bytes:warm");
  return reader;
}

describe("local copies of byte values", () => {
  it("own their bytes, whichever read kept them (get, getEntry, getMany): a copy never holds the rest of its response in memory", async () => {
    const values = Array.from({ length: 20 }, (_, i) => Buffer.alloc(2048, i + 1));
    await t.client.setMany(values.map((value, i) => [`owned-bytes:${i}`, value] as const));
    const reader = await readerWithLocalTier();
    await reader.get("owned-bytes:0");
    await reader.getEntry("owned-bytes:1");
    await reader.getMany(values.slice(2).map((_, i) => `owned-bytes:${i + 2}`));
    for (let i = 0; i < values.length; i++) {
      const local = reader.getLocal(`owned-bytes:${i}`);
      expect(Buffer.isBuffer(local) && local.equals(values[i]!), `key ${i}`).toBe(true);
      expect(ownsItsBytes(local), `key ${i} owns its bytes`).toBe(true);
    }
    reader.close();
  });

  it("of wrap's own write do not change when the caller changes the buffer its loader returned", async () => {
    const writer = await readerWithLocalTier();
    const other = t.newClient();
    const mine = Buffer.alloc(16, 0x61); // a buffer of its own, as a loader may return and later reuse
    const returned = await writer.wrap("owned-bytes:wrapped", () => mine, { ttl: 60_000 });
    expect(returned).toBe(mine);
    mine.fill(0x58);
    await writer.settled();
    await eventually(async () => Buffer.isBuffer(await other.get("owned-bytes:wrapped")));
    expect((await other.get<Buffer>("owned-bytes:wrapped"))!.toString()).toBe("a".repeat(16));
    expect(writer.getLocal<Buffer>("owned-bytes:wrapped")?.toString()).toBe("a".repeat(16));
    expect((await writer.get<Buffer>("owned-bytes:wrapped"))!.toString()).toBe("a".repeat(16));
    writer.close();
    other.close();
  });

  it("of wrap's own write, nor the write itself, change when the caller changes its buffer before the write is sent", async () => {
    const writer = await readerWithLocalTier();
    const other = t.newClient();
    const mine = Buffer.alloc(16, 0x62);
    // A loader slower than the lease session's idle time (250 ms): the Set waits for a new stream after wrap returns.
    const returned = await writer.wrap("owned-bytes:slow", async () => (await new Promise((resolve) => setTimeout(resolve, 600)), mine), { ttl: 60_000 });
    expect(returned).toBe(mine);
    mine.fill(0x58);
    await writer.settled();
    expect((await other.get<Buffer>("owned-bytes:slow"))!.toString()).toBe("b".repeat(16));
    expect(writer.getLocal<Buffer>("owned-bytes:slow")?.toString()).toBe("b".repeat(16));
    writer.close();
    other.close();
  });

  it("of wrap's write are sent as they were when the loader returned, whatever memory a custom serializer's bytes share", async () => {
    // Encodes { payload } as the payload's bytes themselves (a view of the value's memory); decodes to a copy.
    const payloadSerializer: Serializer = {
      encode: (value) => ({ bytes: (value as { payload: Buffer }).payload, contentType: "application/octet-stream" }),
      decode: (bytes, contentType) => ({ payload: Buffer.from(jsonSerializer.decode(bytes, contentType) as Buffer) }),
    };
    const writer = await readerWithLocalTier({ serializer: payloadSerializer });
    const value = { payload: Buffer.alloc(16, 0x63) };
    await writer.wrap("owned-bytes:custom", async () => (await new Promise((resolve) => setTimeout(resolve, 600)), value), { ttl: 60_000 });
    value.payload.fill(0x58);
    await writer.settled();
    expect((await t.client.get<Buffer>("owned-bytes:custom"))!.toString()).toBe("c".repeat(16));
    writer.close();
  });
});
