import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    redis?.resume();
    server?.child.kill("SIGKILL");
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("fails that caller alone: the others get the value once Redis answers", async () => {
    if (!redis) throw new Error("no redis");
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

  it("does not hand a read every caller has left, still waiting to retry, to the next caller (found by review)", async () => {
    // The first caller's deadline passes while its read waits to retry a timed-out attempt; the next caller must not join that read.
    const flags = ["--port", "0", "--metrics-port", "off", "--data-dir", `${dataDir}-retry`, "--redis-url", redis!.url, "--memory-max-entries", "1", "--redis-timeout", "100ms"];
    const retrying = runTiercache(["serve", ...flags]);
    const raw = createClient(CacheService, await listeningAddress(retrying), credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
    const value = (s: string) => new TextEncoder().encode(s);
    const seen: string[] = [];
    try {
      for (let trial = 0; trial < 5; trial++) {
        const key = `k${trial}`;
        await raw.set({ namespace: "sr", key, value: value(`v-${key}`), contentType: "text/plain" });
        await raw.set({ namespace: "sr", key: "filler", value: value("f"), contentType: "text/plain" });
        redis!.pause();
        const first = outcome(raw.get({ namespace: "sr", key }, { timeoutMs: 110 }));
        await sleep(113);
        const next = outcome(raw.get({ namespace: "sr", key }, { timeoutMs: 3_000 }));
        await sleep(40);
        redis!.resume();
        await first;
        const got = await next;
        seen.push(typeof got === "string" ? got : text((got as { value: Uint8Array }).value));
        for (let i = 0; i < 10; i++) await raw.get({ namespace: "sr", key: i % 2 ? key : "filler" }); // keeps the breaker closed
      }
      expect(seen).toEqual(["v-k0", "v-k1", "v-k2", "v-k3", "v-k4"]);
    } finally {
      redis!.resume();
      raw.close();
      retrying.child.kill("SIGKILL");
      rmSync(`${dataDir}-retry`, { recursive: true, force: true });
    }
  }, 30_000);
});
