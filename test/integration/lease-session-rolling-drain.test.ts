import { credentials } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { createClient } from "../../core/grpc-adapter.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe("a rolling restart: one of a client's two servers drains (real servers, addresses: [a, b])", () => {
  it("a wrap of a cached key made while it drains returns the cached value at once, from the other server, and never runs its loader", async () => {
    const servers: TestServer[] = [await startTestServer({ storage: "memory", shutdownGraceMs: 20_000 }), await startTestServer({ storage: "memory", shutdownGraceMs: 20_000 })];
    const raws = servers.map((t) => createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 }));
    try {
      for (const raw of raws) {
        await raw.set({ namespace: "roll", key: "cached", value: json("cached value"), contentType: "application/json", ttlMs: 60_000n });
        await raw.getOrLease({ namespace: "roll", key: "held", leaseMs: 60_000 }); // another process loads "held" (on both)
      }
      const c = servers[0]!.newClient({ addresses: servers.map((t) => t.server.address) });
      // Which server carries c's LeaseSession stream? The one its wrap of "probe" wrote to.
      expect(await c.wrap("probe", async () => "p", { namespace: "roll", ttl: 60_000 })).toBe("p");
      await c.settled();
      const found = await Promise.all(raws.map((raw) => raw.get({ namespace: "roll", key: "probe" }).then((r) => r.found)));
      const x = found.indexOf(true);
      expect(x).toBeGreaterThanOrEqual(0);
      // A wrap waits (on that stream) for the lease of "held".
      const waiting = c.wrap("held", async () => "mine", { namespace: "roll", ttl: 60_000, leaseWaitMs: 10_000 }).catch(() => "failed");
      await new Promise((resolve) => setTimeout(resolve, 100));
      const draining = servers[x]!.server.shutdown(); // the rolling restart reaches that server
      await new Promise((resolve) => setTimeout(resolve, 200));
      // Baseline: a unary Get made at the same moment is served by the other server at once.
      const unaryStarted = Date.now();
      const viaUnary = await c.get("cached", { namespace: "roll" });
      const unaryMs = Date.now() - unaryStarted;
      let loads = 0;
      const started = Date.now();
      const wrapped = await c.wrap("cached", async () => (loads++, "loaded"), { namespace: "roll", ttl: 60_000 });
      const ms = Date.now() - started;
      expect({ viaUnary, unaryUnder5s: unaryMs < 5_000, wrapped, loads, under5s: ms < 5_000 }, `unary Get took ${unaryMs} ms, wrap took ${ms} ms`).toEqual({ viaUnary: "cached value", unaryUnder5s: true, wrapped: "cached value", loads: 0, under5s: true });
      void waiting;
      void draining;
    } finally {
      for (const raw of raws) raw.close();
      for (const t of servers) await t.dispose();
    }
  }, 60_000);
});
