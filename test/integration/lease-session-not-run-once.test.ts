import { credentials } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { LeaseSession } from "../../client/lease-session.js";
import { createClient } from "../../core/grpc-adapter.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { startTestServer } from "../helpers/test-server.js";
import { rawLeaseTransport } from "../helpers/raw-lease-transport.js";

describe("held: a Set refused not_run (server-wide session calls all taken) runs exactly once, unary", () => {
  it("the write lands once, and the waiters are unaffected", async () => {
    const t = await startTestServer({ storage: "memory" });
    const raw = createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
    try {
      await raw.getOrLease({ namespace: "sat", key: "held", leaseMs: 60_000 });
      const waiters = Array.from({ length: 16 }, () => new LeaseSession(rawLeaseTransport(raw)));
      let unary = 0;
      const waits = waiters.flatMap((s) => Array.from({ length: 64 }, () => s.call("getOrLease", { namespace: "sat", key: "held", leaseMs: 60_000, waitMs: 3_000 }, 8_000).catch(() => undefined)));
      await new Promise((resolve) => setTimeout(resolve, 500)); // 1,024 lease waits held on the server
      const writer = new LeaseSession(rawLeaseTransport(raw, { unary: { getOrLease: (r, o) => raw.getOrLease(r, o), set: (r, o) => (unary++, raw.set(r, o)), releaseLease: (r, o) => raw.releaseLease(r, o) } }));
      await writer.call("getOrLease", { namespace: "sat2", key: "opener", leaseMs: 1000 }, 5_000).catch(() => undefined); // READY (refused not_run -> unary)
      await writer.call("set", { namespace: "sat2", key: "x", value: new TextEncoder().encode('"v"'), contentType: "application/json", ttlMs: 60_000n }, 5_000);
      const stats = await raw.stats({ namespace: "sat2" });
      const sets = stats.namespaces[0]?.tiers[0]?.sets;
      await Promise.all(waits);
      writer.close();
      waiters.forEach((s) => s.close());
      expect({ unary, sets }).toEqual({ unary: 1, sets: 1n });
    } finally {
      raw.close();
      await t.dispose();
    }
  }, 60_000);
});
