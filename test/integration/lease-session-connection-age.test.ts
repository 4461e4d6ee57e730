import { credentials } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { LeaseSession } from "../../client/lease-session.js";
import { rotateOnConnectionChange } from "../../client/session-rotation.js";
import { createClient } from "../../core/grpc-adapter.js";
import { RpcError, statusName } from "../../core/rpc-error.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { startTestServer } from "../helpers/test-server.js";
import { rawLeaseTransport } from "../helpers/raw-lease-transport.js";

/**
 * The server asks a connection older than --max-connection-age to go (GOAWAY) and cuts it after the grace.
 * Unary calls made after the GOAWAY go on a new connection; calls a busy client's LeaseSession carries keep
 * going on the old stream and are cut with it.
 */
async function run(mode: "session" | "unary") {
  const t = await startTestServer({ storage: "memory", maxConnectionAgeMs: 1000, maxConnectionAgeGraceMs: 1000 });
  const raw = createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
  const holderRaw = createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
  try {
    await holderRaw.getOrLease({ namespace: "age", key: "held", leaseMs: 60_000 });
    const transport = rawLeaseTransport(raw, { preferUnary: () => mode === "unary" });
    const session = new LeaseSession(transport);
    rotateOnConnectionChange(raw.grpcClient.getChannel(), session);
    const outcomes: string[] = [];
    const calls: Promise<void>[] = [];
    // A busy client: a call every 100 ms for 4.5 s, each waiting 300 ms on the server (for a lease another holds).
    for (let i = 0; i < 45; i++) {
      calls.push(
        session.call("getOrLease", { namespace: "age", key: "held", leaseMs: 60_000, waitMs: 300 }, 5_000).then(
          () => void outcomes.push("ok"),
          (err: unknown) => void outcomes.push(err instanceof RpcError ? `${statusName(err.code)}: ${err.details}` : String(err)),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await Promise.all(calls);
    session.close();
    return outcomes.filter((o) => o !== "ok");
  } finally {
    raw.close();
    holderRaw.close();
    await t.dispose();
  }
}

describe("--max-connection-age with a busy client", () => {
  it("unary calls made after the GOAWAY all succeed (baseline)", async () => {
    expect(await run("unary")).toEqual([]);
  }, 30_000);

  it("calls carried by the client's LeaseSession all succeed too (none is cut with the aged connection)", async () => {
    expect(await run("session")).toEqual([]);
  }, 30_000);
});
