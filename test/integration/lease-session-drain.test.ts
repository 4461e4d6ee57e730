import { credentials } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { LeaseSession } from "../../client/lease-session.js";
import { createClient } from "../../core/grpc-adapter.js";
import { RpcError, statusName } from "../../core/rpc-error.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { startTestServer } from "../helpers/test-server.js";
import { rawLeaseTransport } from "../helpers/raw-lease-transport.js";

/**
 * While a server drains, a session stream it still has a call on (a lease wait) stays open but is no longer read.
 * A call the client makes then is sent on it and never read: it hangs until its own deadline, where a unary
 * call made at the same moment fails at once (UNAVAILABLE), so the caller can fall back (or reach another server).
 */
async function run(mode: "session" | "unary") {
  const t = await startTestServer({ storage: "memory", shutdownGraceMs: 20_000 });
  const raw = createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
  const holderRaw = createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
  try {
    await holderRaw.getOrLease({ namespace: "drain", key: "held", leaseMs: 60_000 });
    let unary = false;
    const transport = rawLeaseTransport(raw, { preferUnary: () => unary });
    const session = new LeaseSession(transport);
    // A lease wait in flight on the session stream (answered when the lease lapses or after 4 s).
    const waiting = session.call("getOrLease", { namespace: "drain", key: "held", leaseMs: 60_000, waitMs: 4_000 }, 9_000).catch(() => undefined);
    await session.call("getOrLease", { namespace: "drain", key: "warm", leaseMs: 1000 }, 3_000); // the server has read the wait
    const stopping = t.server.shutdown();
    await new Promise((resolve) => setTimeout(resolve, 200));
    unary = mode === "unary";
    const started = Date.now();
    const outcome = await session.call("getOrLease", { namespace: "drain", key: "other", leaseMs: 1000 }, 10_000).then(
      () => "answered",
      (err: unknown) => (err instanceof RpcError ? statusName(err.code) : String(err)),
    );
    const ms = Date.now() - started;
    await waiting;
    session.close();
    await stopping;
    return { outcome, settledWithin5s: ms < 5_000, ms };
  } finally {
    raw.close();
    holderRaw.close();
    await t.dispose();
  }
}

describe("a call made while the server drains", () => {
  it("unary: settles at once (baseline)", async () => {
    const { ms, ...got } = await run("unary");
    expect(got, `settled after ${ms} ms: ${got.outcome}`).toMatchObject({ settledWithin5s: true, outcome: "UNAVAILABLE" });
  }, 30_000);

  it("on the session: settles at once as well, rather than hang on a stream the server no longer reads until its deadline", async () => {
    const { ms, ...got } = await run("session");
    expect(got, `settled after ${ms} ms: ${got.outcome}`).toMatchObject({ settledWithin5s: true });
  }, 30_000);
});
