import { credentials } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { CacheClient } from "../../client/index.js";
import { createClient } from "../../core/grpc-adapter.js";
import { RpcError, statusName } from "../../core/rpc-error.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { startServerChild, type ServerChild } from "../helpers/server-child.js";
import { LeaseSession } from "../../client/lease-session.js";
import { rawLeaseTransport } from "../helpers/raw-lease-transport.js";

/**
 * Rolling restart, addresses: [a, b], servers in child processes. The client's event loop is busy (a 1.5 s
 * synchronous stretch, e.g. a CPU-heavy request or a GC pause) while a drains: a sends `draining`, and since the
 * client cannot half-close, ends the stream DRAIN_LINGER_MS (500 ms) later. The client then makes a wrap of a
 * key cached on both servers: its GetOrLease goes out on the stream it still believes open (it crosses the
 * `draining` message), is never read nor answered (the proto says a call crossing `draining` is answered
 * UNAVAILABLE not_run), and the client rejects it UNAVAILABLE "may or may not have taken effect" -> wrap runs its
 * loader. A unary Get made at the same moment is served by b.
 */
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const busy = (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    /* the client's event loop is busy */
  }
};

let children: ServerChild[] = [];
afterEach(async () => {
  for (const c of children) await c.stop().catch(() => {});
  children = [];
});

describe("a call crossing `draining` while the client's event loop was busy for > 500 ms", () => {
  it("the wrap of a cached key returns the cached value (from b) without running its loader, as a unary Get does", async () => {
    children = [await startServerChild(["--storage", "memory"]), await startServerChild(["--storage", "memory"])];
    const raws = children.map((c) => createClient(CacheService, c.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 }));
    const client = new CacheClient({ addresses: children.map((c) => c.address), timeoutMs: 3_000 });
    try {
      for (const raw of raws) await raw.set({ namespace: "busy", key: "cached", value: json("cached value"), contentType: "application/json", ttlMs: 60_000n });
      // Which server carries the client's LeaseSession stream?
      expect(await client.wrap("probe", async () => "p", { namespace: "busy", ttl: 60_000 })).toBe("p");
      await client.settled();
      const found = await Promise.all(raws.map((raw) => raw.get({ namespace: "busy", key: "probe" }).then((r) => r.found)));
      const x = found.indexOf(true);
      expect(x).toBeGreaterThanOrEqual(0);
      // Keep the stream in use (within its 250 ms idle time), then a drains while this process is busy.
      await client.wrap("cached", async () => "loaded", { namespace: "busy", ttl: 60_000 });
      await new Promise<void>((resolve) => children[x]!.child.send("stop", () => resolve()));
      busy(1_500);
      let loads = 0;
      const wrapped = client.wrap("cached", async () => (loads++, "loaded"), { namespace: "busy", ttl: 60_000 });
      const viaGet = client.get("cached", { namespace: "busy" }).catch((e: unknown) => (e instanceof RpcError ? statusName(e.code) : String(e)));
      const got = { wrapped: await wrapped.catch((e: unknown) => String(e)), loads, viaGet: await viaGet };
      expect(got).toEqual({ wrapped: "cached value", loads: 0, viaGet: "cached value" });
    } finally {
      client.close();
      for (const raw of raws) raw.close();
    }
  }, 60_000);

  it("mechanism (one server): the crossing call is never read, and the client reports it as possibly run", async () => {
    children = [await startServerChild(["--storage", "memory"])];
    const raw = createClient(CacheService, children[0]!.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
    try {
      const session = new LeaseSession(rawLeaseTransport(raw));
      await session.call("getOrLease", { namespace: "busy", key: "warm", leaseMs: 1000 }, 3_000);
      await new Promise<void>((resolve) => children[0]!.child.send("stop", () => resolve()));
      busy(1_500);
      const outcome = await session.call("getOrLease", { namespace: "busy", key: "other", leaseMs: 1000 }, 3_000).then(
        () => "answered",
        (e: unknown) => (e instanceof RpcError ? `${statusName(e.code)}: ${e.details}` : String(e)),
      );
      session.close();
      expect(outcome).not.toMatch(/may or may not have taken effect/);
    } finally {
      raw.close();
    }
  }, 60_000);
});
