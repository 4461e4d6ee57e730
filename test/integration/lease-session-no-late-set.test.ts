import { credentials } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { LeaseSession } from "../../client/lease-session.js";
import { createClient } from "../../core/grpc-adapter.js";
import { RpcError, statusName } from "../../core/rpc-error.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { startTestServer } from "../helpers/test-server.js";
import { rawLeaseTransport } from "../helpers/raw-lease-transport.js";

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe("Sets whose callers were told DEADLINE_EXCEEDED (real server)", () => {
  it("never land after a newer write, while the stream is full of lease waits whose callers gave up", async () => {
    const t = await startTestServer({ storage: "memory" });
    const raw = createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
    try {
      await raw.getOrLease({ namespace: "late", key: "held", leaseMs: 60_000 });
      const transport = rawLeaseTransport(raw);
      const session = new LeaseSession(transport);
      await session.call("getOrLease", { namespace: "late", key: "warm", leaseMs: 100 }, 2000); // READY
      const outcomes: string[] = [];
      const record = (p: Promise<unknown>) => p.then(() => outcomes.push("ok"), (err: unknown) => outcomes.push(err instanceof RpcError ? statusName(err.code) : String(err)));
      for (let round = 0; round < 5; round++) {
        // 64 lease waits, each asking the server to wait 10 s, but the caller gives up after 150 ms.
        const waits = Array.from({ length: 64 }, () => record(session.call("getOrLease", { namespace: "late", key: "held", leaseMs: 60_000, waitMs: 10_000 }, 150)));
        // Sets with short deadlines made while those are in flight or just expired.
        const sets: Promise<unknown>[] = [];
        for (let i = 0; i < 10; i++) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          sets.push(record(session.call("set", { namespace: "late", key: `w${round}`, value: json(`old ${i}`), contentType: "application/json" }, 50)));
        }
        await Promise.all([...waits, ...sets]);
        await raw.set({ namespace: "late", key: `w${round}`, value: json("newer"), contentType: "application/json" });
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      for (let round = 0; round < 5; round++) {
        const stored = await raw.get({ namespace: "late", key: `w${round}` });
        expect(new TextDecoder().decode(stored.value)).toBe(JSON.stringify("newer"));
      }
      session.close();
      console.log("outcomes", JSON.stringify(outcomes.reduce<Record<string, number>>((a, o) => ((a[o] = (a[o] ?? 0) + 1), a), {})));
    } finally {
      raw.close();
      await t.dispose();
    }
  }, 30_000);
});
