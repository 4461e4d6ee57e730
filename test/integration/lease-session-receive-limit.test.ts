import { credentials } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { createClient } from "../../core/grpc-adapter.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { startTestServer } from "../helpers/test-server.js";

/**
 * A client with maxReceiveMessageBytes = LIMIT. A value whose unary GetOrLease answer is ~100 bytes under LIMIT is
 * delivered unary (and by Get), but the LeaseSession server's estimate (value + 128 + 3 bytes/char of every string,
 * incl. the 36-char stream_id and the content type) is over LIMIT, so the streamed GetOrLease is refused
 * RESOURCE_EXHAUSTED and wrap throws, where README says "fails its own call ... as a unary call would".
 */
const LIMIT = 100_000;
const VALUE_BYTES = LIMIT - 150; // JSON string incl. its quotes

describe("GetOrLease answer near the client's receive limit", () => {
  it("unary GetOrLease and Get deliver it; wrap over the LeaseSession should return it as well", async () => {
    const t = await startTestServer({ storage: "memory" });
    const raw = createClient(CacheService, t.server.address, credentials.createInsecure(), {
      defaultTimeoutMs: 10_000,
      channelOptions: { "grpc.max_receive_message_length": LIMIT },
    });
    try {
      const stored = "x".repeat(VALUE_BYTES - 2);
      await raw.set({ namespace: "lim", key: "big", value: new TextEncoder().encode(JSON.stringify(stored)), contentType: "application/json", ttlMs: 60_000n });
      // Baselines: the same answer, unary, under the same receive limit.
      const unary = await raw.getOrLease({ namespace: "lim", key: "big", leaseMs: 1000 });
      expect(unary.found).toBe(true);
      const c = t.newClient({ maxReceiveMessageBytes: LIMIT });
      expect(((await c.get("big", { namespace: "lim" })) as string).length).toBe(stored.length);
      let loads = 0;
      const got = await c.wrap("big", async () => (loads++, "loaded"), { namespace: "lim", ttl: 60_000 }).then(
        (v) => (typeof v === "string" && v.length === stored.length ? "the stored value" : `other: ${String(v).slice(0, 20)}`),
        (err: unknown) => `threw ${String(err)}`.slice(0, 300),
      );
      expect({ got, loads }).toEqual({ got: "the stored value", loads: 0 });
    } finally {
      raw.close();
      await t.dispose();
    }
  }, 30_000);
});
