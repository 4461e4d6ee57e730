import { credentials } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { createClient } from "../../core/grpc-adapter.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { startTestServer } from "../helpers/test-server.js";

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe("a burst of wraps on a fresh client stream (real server)", () => {
  it("a wrap of a cached key made in the same tick as 64 lease waits returns the cached value at once and never runs its loader", async () => {
    const t = await startTestServer({ storage: "memory" });
    const raw = createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
    try {
      // Another process holds the leases of 64 keys (its loaders are slow).
      for (let i = 0; i < 64; i++) await raw.getOrLease({ namespace: "burst", key: `leased${i}`, leaseMs: 60_000 });
      await raw.set({ namespace: "burst", key: "cached", value: json("cached value"), contentType: "application/json", ttlMs: 60_000n });

      // This client starts (or its stream was idle 250 ms) and gets a burst: 64 wraps of the leased keys, and one of a cached key.
      const victim = t.newClient();
      const waits = Array.from({ length: 64 }, (_, i) => victim.wrap(`leased${i}`, async () => "mine", { namespace: "burst", ttl: 60_000, leaseWaitMs: 20_000 }).catch(() => "failed"));
      let loads = 0;
      const started = Date.now();
      const wrapped = await victim.wrap("cached", async () => (loads++, "loaded"), { namespace: "burst", ttl: 60_000 });
      const ms = Date.now() - started;
      // The same wrap made once the stream is READY and full goes unary and returns in milliseconds.
      expect({ wrapped, loads, tookUnder5s: ms < 5_000 }, `the wrap took ${ms} ms`).toEqual({ wrapped: "cached value", loads: 0, tookUnder5s: true });
      void waits;
    } finally {
      raw.close();
      await t.dispose();
    }
  }, 30_000);
});
