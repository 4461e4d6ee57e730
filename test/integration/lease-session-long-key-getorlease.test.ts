import { credentials } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { createClient } from "../../core/grpc-adapter.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { RpcError, statusName } from "../../core/rpc-error.js";
import { waiterBehindHeldLease } from "../helpers/lease-waiter.js";
import { startTestServer } from "../helpers/test-server.js";

/**
 * Same class as the fixed "long key Set fails the stream" bug, for GetOrLease: the client checks only Sets against
 * READY's max_message_bytes (largeSet), so a GetOrLease whose key alone is over the server's message limit is sent on
 * the stream; grpc-js fails the whole stream RESOURCE_EXHAUSTED and every other call on it is rejected
 * UNAVAILABLE "may or may not have taken effect" -> another wrap waiting for a lease runs its own loader uncached.
 * Unary, the oversized GetOrLease fails alone.
 */
describe("a wrap whose key is over the server's message limit (real server)", () => {
  it("fails its own call only, not a wrap waiting for a lease on the same session", async () => {
    // Valid: 4 KiB > 1 KiB value + 1 KiB key + 1 KiB.
    const t = await startTestServer({ storage: "memory", maxKeyBytes: 1024, maxValueBytes: 1024, maxMessageBytes: 4096 });
    try {
      // Baseline: the same GetOrLease unary fails alone, and not as UNAVAILABLE (so a unary wrap would throw, not load).
      const raw = createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 5_000 });
      const unary = await raw.getOrLease({ namespace: "lk", key: "k".repeat(6_000), leaseMs: 1000 }).then(() => "ok", (e: unknown) => (e instanceof RpcError ? statusName(e.code) : String(e)));
      raw.close();
      expect(unary).toBe("RESOURCE_EXHAUSTED");
      const c = t.newClient();
      const holder = t.newClient();
      const behind = await waiterBehindHeldLease(holder, c, "lk");
      const longKey = "k".repeat(6_000);
      const own = await c.wrap(longKey, async () => "v", { namespace: "lk", ttl: 60_000 }).then(
        () => "ok",
        (e: unknown) => (e instanceof RpcError ? statusName(e.code) : String(e)),
      );
      const after = await behind.release();
      expect({ own: own === "ok" ? "ok" : "failed", ...after }).toEqual({ own: "failed", held: "holder's value", waited: "holder's value", waiterLoads: 0 });
    } finally {
      await t.dispose();
    }
  }, 30_000);

  it("a burst of wraps of cached keys opening a session alongside it returns the cached values without loading", async () => {
    const t = await startTestServer({ storage: "memory", maxKeyBytes: 1024, maxValueBytes: 1024, maxMessageBytes: 4096 });
    try {
      const c = t.newClient();
      for (const k of ["a", "b", "c"]) await c.set(k, `cached ${k}`, { namespace: "lk2", ttl: 60_000 });
      let loads = 0;
      const loader = async () => (loads++, "loaded");
      const [first, ...others] = await Promise.all([
        c.wrap("k".repeat(6_000), loader, { namespace: "lk2", ttl: 60_000 }).catch(() => "failed"),
        ...["a", "b", "c"].map((k) => c.wrap(k, loader, { namespace: "lk2", ttl: 60_000 }).catch((e: unknown) => String(e))),
      ]);
      expect({ first, others, loads }).toEqual({ first: "failed", others: ["cached a", "cached b", "cached c"], loads: 0 }); // the long key fails unary, loading nothing
    } finally {
      await t.dispose();
    }
  }, 30_000);
});
