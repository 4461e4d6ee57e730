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
const outcome = (call: Promise<unknown>) => call.then((response) => response, (err: unknown) => (RpcError.is(err) ? statusName(err.code) : String(err)));
const text = (value: Uint8Array) => new TextDecoder().decode(value);

/**
 * Calls for a key that is being read from Redis share that read. The read ran
 * under the first caller's call, so when that caller's deadline passed (or
 * it cancelled) while Redis was slow, every other caller sharing the read
 * failed with UNAVAILABLE "call cancelled", however much time it had left.
 */
describe("a real server over Redis, when a caller sharing a read ends early", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tiercache-shared-read-"));
  let redis: TestRedis | undefined;
  let server: TiercacheProcess | undefined;
  afterAll(async () => {
    redis?.resume();
    server?.child.kill("SIGKILL");
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("fails that caller alone: the others get the value once Redis answers", async () => {
    redis = await startTestRedis();
    // One entry per namespace in memory, so that writing a second key leaves the first in Redis only.
    const flags = ["--port", "0", "--metrics-port", "off", "--data-dir", dataDir, "--redis-url", redis.url, "--memory-max-entries", "1", "--redis-timeout", "5s"];
    server = runTiercache(["serve", ...flags]);
    const address = await listeningAddress(server);
    const raw = createClient(CacheService, address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
    const value = (s: string) => new TextEncoder().encode(s);
    try {
      for (const key of ["a", "b", "c", "filler"]) await raw.set({ namespace: "sr", key, value: value(`v-${key}`), contentType: "text/plain" });
      redis.pause();
      const shortGet = outcome(raw.get({ namespace: "sr", key: "a" }, { timeoutMs: 200 }));
      const shortGetMany = outcome(raw.getMany({ namespace: "sr", keys: ["b", "c"] }, { timeoutMs: 200 }));
      await sleep(50);
      const longGet = outcome(raw.get({ namespace: "sr", key: "a" }, { timeoutMs: 8_000 }));
      const longGetOfBatchKey = outcome(raw.get({ namespace: "sr", key: "c" }, { timeoutMs: 8_000 }));
      expect(await shortGet).toBe("DEADLINE_EXCEEDED");
      expect(await shortGetMany).toBe("DEADLINE_EXCEEDED");
      await sleep(300);
      redis.resume();
      const long = (await longGet) as { found: boolean; value: Uint8Array } | string;
      const batchKey = (await longGetOfBatchKey) as { found: boolean; value: Uint8Array } | string;
      expect(typeof long === "string" ? long : text(long.value)).toBe("v-a");
      expect(typeof batchKey === "string" ? batchKey : text(batchKey.value)).toBe("v-c");
      expect(server.child.exitCode, server.stderr()).toBeNull();
    } finally {
      redis.resume();
      raw.close();
    }
  }, 30_000);
});
