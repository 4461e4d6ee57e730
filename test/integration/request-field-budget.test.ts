import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../core/grpc-adapter.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { maxRequestFields } from "../../server/server.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const passThrough = (bytes: Buffer) => bytes;

/** `count` empty entries (field 2, length 0): two bytes each, the cheapest way to make a decoder allocate. */
function emptyEntries(count: number): Buffer {
  const bytes = Buffer.alloc(count * 2);
  for (let i = 0; i < bytes.length; i += 2) bytes[i] = 0x12;
  return bytes;
}

describe("a request of very many tiny fields is refused before it is decoded (real server)", () => {
  let t: TestServer;
  let raw: Client;
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" });
    raw = new Client(t.server.address, credentials.createInsecure());
  });
  afterAll(async () => {
    raw.close();
    await t.dispose();
  });

  const unary = (method: string, bytes: Buffer) =>
    new Promise<ServiceError | undefined>((resolve) => raw.makeUnaryRequest(`/tiercache.v1.CacheService/${method}`, passThrough, passThrough, bytes, new Metadata(), { deadline: Date.now() + 20_000 }, (err) => resolve(err ?? undefined)));

  it("SetMany, GetMany and StreamSet of two million empty items: RESOURCE_EXHAUSTED naming the field limit (the server decoded 8 million such entries for 11 s before)", async () => {
    const limit = maxRequestFields(t.config.maxBatch, t.config.maxWatchNamespaces);
    const bytes = emptyEntries(2_000_000);
    for (const method of ["SetMany", "GetMany"]) {
      const err = await unary(method, bytes);
      expect({ method, code: err?.code, details: err?.details }).toEqual({ method, code: 8, details: expect.stringContaining(`more than ${limit} fields`) });
    }
    const streamed = await new Promise<ServiceError | undefined>((resolve) => {
      const call = raw.makeClientStreamRequest("/tiercache.v1.CacheService/StreamSet", passThrough, passThrough, new Metadata(), { deadline: Date.now() + 20_000 }, (err) => resolve(err ?? undefined));
      call.write(bytes);
      call.end();
    });
    expect({ code: streamed?.code, details: streamed?.details }).toEqual({ code: 8, details: expect.stringContaining(`more than ${limit} fields`) });
  }, 30_000);

  it("a full legal batch still passes: max-batch entries, each with every field and 16 tags", async () => {
    const typed = createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 20_000 });
    try {
      const tags = Array.from({ length: 16 }, (_, i) => `tag-${i}`);
      const entries = Array.from({ length: t.config.maxBatch }, (_, i) => ({ key: `k${i}`, value: Buffer.from(`v${i}`), contentType: "text/plain", ttlMs: 60_000n, graceMs: 1_000n, tags }));
      const stored = await typed.setMany({ namespace: "budget", entries });
      expect(stored.stored).toBe(t.config.maxBatch);
      const found = await typed.getMany({ namespace: "budget", keys: entries.map((e) => e.key) });
      expect(found.entries).toHaveLength(t.config.maxBatch);
    } finally {
      typed.close();
    }
  }, 30_000);
});
