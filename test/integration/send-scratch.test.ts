import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SEND_SCRATCH_MIN_BYTES } from "../../core/wire/send-scratch.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * The server writes large responses into one reused buffer (core/wire/send-scratch.ts),
 * which is right only while grpc-js copies each serialized response before the next
 * is made. Many large responses in flight at once, on several calls and clients,
 * must each arrive with their own bytes.
 */
describe("large responses written through the shared send buffer", () => {
  let ts: TestServer;
  const keys = Array.from({ length: 600 }, (_, i) => `scratch:${i}`);
  const values = new Map(keys.map((key) => [key, randomBytes(1024 + (key.length % 7))]));

  beforeAll(async () => {
    ts = await startTestServer();
    await ts.client.setMany(keys.map((key) => [key, values.get(key)!] as const));
  });
  afterAll(async () => {
    await ts.dispose();
  });

  it("StreamGet and GetMany from several clients at once each get their own values", async () => {
    const batchSize = 150;
    expect(batchSize * 1024).toBeGreaterThan(SEND_SCRATCH_MIN_BYTES);
    const clients = [ts.client, ts.newClient(), ts.newClient()];
    const streamed = clients.flatMap((client) =>
      [0, 1].map(async () => {
        let seen = 0;
        for await (const [key, value] of client.streamGet<Buffer>(keys, { batchSize })) {
          expect(Buffer.compare(value!, values.get(key)!), key).toBe(0);
          seen++;
        }
        return seen;
      }),
    );
    const many = clients.map(async (client) => {
      const slice = keys.slice(0, 200);
      const found = await client.getMany<Buffer>(slice);
      for (const key of slice) expect(Buffer.compare(found.get(key)!, values.get(key)!), key).toBe(0);
      return found.size;
    });
    expect(await Promise.all(streamed)).toEqual(Array(6).fill(keys.length));
    expect(await Promise.all(many)).toEqual([200, 200, 200]);
  });
});
