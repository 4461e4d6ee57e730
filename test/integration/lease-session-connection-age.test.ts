import { credentials } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { LeaseSession } from "../../client/lease-session.js";
import { rotateOnConnectionChange } from "../../client/session-rotation.js";
import { createClient } from "../../core/grpc-adapter.js";
import { RpcError, statusName } from "../../core/rpc-error.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { rawLeaseTransport } from "../helpers/raw-lease-transport.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * The server asks a connection older than --max-connection-age to go (GOAWAY) and cuts it after the grace. Unary
 * calls made after the GOAWAY go on a new connection; a busy client's LeaseSession must move too, or the calls it
 * carries are cut with the old connection. With one server the channel leaves READY (the client rotates its stream
 * then); with two (round_robin) it stays READY, and the stream age READY tells (half the grace) does it.
 */
async function run(mode: "session" | "unary", serverCount: 1 | 2): Promise<string[]> {
  const servers: TestServer[] = [];
  for (let i = 0; i < serverCount; i++) servers.push(await startTestServer({ storage: "memory", maxConnectionAgeMs: 1000, maxConnectionAgeGraceMs: 1000 }));
  const target = serverCount === 1 ? servers[0]!.server.address : `ipv4:${servers.map((t) => t.server.address).join(",")}`;
  const raw = createClient(CacheService, target, credentials.createInsecure(), {
    defaultTimeoutMs: 10_000,
    ...(serverCount === 2 && { channelOptions: { "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) } }),
  });
  const holders = servers.map((t) => createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 }));
  try {
    for (const holder of holders) await holder.getOrLease({ namespace: "age", key: "held", leaseMs: 60_000 });
    const session = new LeaseSession(rawLeaseTransport(raw, { preferUnary: () => mode === "unary" }));
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
    for (const holder of holders) holder.close();
    for (const t of servers) await t.dispose();
  }
}

describe("--max-connection-age with a busy client", () => {
  for (const serverCount of [1, 2] as const) {
    const of = serverCount === 1 ? "one server" : "two servers (round_robin)";
    it(`${of}: unary calls made after the GOAWAY all succeed (baseline)`, async () => {
      expect(await run("unary", serverCount)).toEqual([]);
    }, 60_000);

    it(`${of}: calls carried by the client's LeaseSession all succeed too (none is cut with the aged connection)`, async () => {
      expect(await run("session", serverCount)).toEqual([]);
    }, 60_000);
  }
});
