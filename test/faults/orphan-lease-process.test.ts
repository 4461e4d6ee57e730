import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { RpcError, statusName } from "../../client/index.js";
import { createClient } from "../../core/grpc-adapter.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { listeningAddress, runTiercache, type TiercacheProcess } from "../helpers/tiercache-process.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A GetOrLease whose call ends while its lease command is on its way to Redis
 * (Redis slow or paused) may still take the lease there once Redis runs the
 * command: a lease whose token nobody has. Every other caller then saw the
 * key leased for the whole lease time and waited, or computed without a
 * lease, as if a loader were running. The server now gives such a lease back.
 */
describe("a real server over Redis, when a lease request's call ends before Redis answers", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tiercache-orphan-lease-"));
  let redis: TestRedis | undefined;
  let server: TiercacheProcess | undefined;
  afterAll(async () => {
    redis?.resume();
    server?.child.kill("SIGKILL");
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("leaves no lease behind that nobody holds a token for", async () => {
    redis = await startTestRedis();
    server = runTiercache(["serve", "--port", "0", "--metrics-port", "off", "--data-dir", dataDir, "--redis-url", redis.url, "--redis-timeout", "5s"]);
    const address = await listeningAddress(server);
    const raw = createClient(CacheService, address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
    try {
      // A stale value within grace, held in this instance's memory: GetOrLease reads it without Redis and asks Redis only for the lease.
      await raw.set({ namespace: "ol", key: "k", value: new TextEncoder().encode("old"), contentType: "text/plain", ttlMs: 50n, graceMs: 60_000n });
      await sleep(150);
      redis.pause();
      const cut = await raw.getOrLease({ namespace: "ol", key: "k", leaseMs: 30_000 }, { timeoutMs: 200 }).then(
        () => "answered",
        (err: unknown) => (RpcError.is(err) ? statusName(err.code) : String(err)),
      );
      expect(cut).toBe("DEADLINE_EXCEEDED");
      redis.resume();
      await sleep(300);
      const next = await raw.getOrLease({ namespace: "ol", key: "k", leaseMs: 30_000 });
      expect({ found: next.found, stale: next.stale, leased: next.leaseToken !== "" }).toEqual({ found: true, stale: true, leased: true });
      expect(server.child.exitCode, server.stderr()).toBeNull();
    } finally {
      redis.resume();
      raw.close();
    }
  }, 30_000);
});
