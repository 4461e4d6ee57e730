import { credentials } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { LeaseSession } from "../../client/lease-session.js";
import { createClient } from "../../core/grpc-adapter.js";
import { RpcError, statusName } from "../../core/rpc-error.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { startTestServer } from "../helpers/test-server.js";
import { rawLeaseTransport } from "../helpers/raw-lease-transport.js";

describe("held: a draining server with many open sessions", () => {
  it("answers every call it had read (lease waits included) and stops well within its grace", async () => {
    const t = await startTestServer({ storage: "memory", shutdownGraceMs: 20_000 });
    const raws = Array.from({ length: 4 }, () => createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000, channelOptions: { "grpc.use_local_subchannel_pool": 1 } })); // 50 streams a connection (under max-concurrent-streams 100)
    try {
      await raws[0]!.getOrLease({ namespace: "many", key: "held", leaseMs: 60_000 });
      const sessions = Array.from({ length: 200 }, (_, i) => new LeaseSession(rawLeaseTransport(raws[i % 4]!), { idleMs: 60_000 }));
      await Promise.all(sessions.map((s, i) => s.call("getOrLease", { namespace: "many", key: `warm${i}`, leaseMs: 1000 }, 5_000)));
      // 40 of them carry a lease wait of 1 s when the drain starts.
      const waits = sessions.slice(0, 40).map((s) =>
        s.call("getOrLease", { namespace: "many", key: "held", leaseMs: 60_000, waitMs: 1_000 }, 8_000).then(
          (r) => (r.found || r.leaseToken ? "value" : "waited"),
          (e: unknown) => (e instanceof RpcError ? `${statusName(e.code)}: ${e.details}` : String(e)),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      await t.server.shutdown();
      const ms = Date.now() - started;
      const outcomes = await Promise.all(waits);
      sessions.forEach((s) => s.close());
      expect({ all: [...new Set(outcomes)], under10s: ms < 10_000 }, `shutdown took ${ms} ms`).toEqual({ all: ["waited"], under10s: true });
    } finally {
      raws.forEach((r) => r.close());
      await t.dispose();
    }
  }, 60_000);
});
