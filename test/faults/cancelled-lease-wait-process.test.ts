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
 * A GetOrLease waiting for another caller's lease over Redis, whose deadline
 * passes during the wait, re-read the key with its call already over: that
 * read's load was abandoned without a handler, and its failure, unhandled,
 * ended the server process (found by review; older than the code around it).
 */
describe("a real server over Redis, when calls end while they wait", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tiercache-lease-wait-"));
  let redis: TestRedis | undefined;
  let server: TiercacheProcess | undefined;
  afterAll(async () => {
    server?.child.kill("SIGKILL");
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps running and serving after lease waits and reads whose deadline passed", async () => {
    redis = await startTestRedis();
    server = runTiercache(["serve", "--port", "0", "--metrics-port", "off", "--data-dir", dataDir, "--redis-url", redis.url]);
    const address = await listeningAddress(server);
    const raw = createClient(CacheService, address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
    try {
      const holder = await raw.getOrLease({ namespace: "lw", key: "k", leaseMs: 10_000 });
      expect(holder.leaseToken).not.toBe("");
      const outcomes: string[] = [];
      for (let i = 0; i < 5; i++) {
        const waiter = raw.getOrLease({ namespace: "lw", key: "k", leaseMs: 10_000, waitMs: 3_000 }, { timeoutMs: 150 + 50 * i });
        outcomes.push(await waiter.then(() => "answered", (err: unknown) => (RpcError.is(err) ? statusName(err.code) : String(err))));
      }
      expect(outcomes).toEqual(Array(5).fill("DEADLINE_EXCEEDED"));
      await sleep(500);
      expect(server.child.exitCode, server.stderr()).toBeNull();
      const after = await raw.get({ namespace: "lw", key: "other" }, { timeoutMs: 2_000 });
      expect(after.found).toBe(false);
      expect(server.stderr()).not.toMatch(/unhandled|TierUnavailableError/i);
    } finally {
      raw.close();
    }
  }, 30_000);
});
