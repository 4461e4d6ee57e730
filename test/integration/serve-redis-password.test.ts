import { credentials } from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createClient } from "../../core/grpc-adapter.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { listeningAddress, runTiercache, type TiercacheProcess } from "../helpers/tiercache-process.js";

/**
 * `--redis-password` (or TIERCACHE_REDIS_PASSWORD) beside a --redis-url that
 * carries no password was accepted and then ignored: the server started,
 * could not log in to Redis, and answered every write UNAVAILABLE. It now
 * logs in with it; a password given in both places is refused at start.
 */
describe("tiercache serve against a Redis that requires a password", () => {
  let redis: TestRedis | undefined;
  let server: TiercacheProcess | undefined;
  afterAll(async () => {
    server?.child.kill("SIGKILL");
    await redis?.stop();
  });

  it("logs in with TIERCACHE_REDIS_PASSWORD when --redis-url carries none, and refuses a password in both", async () => {
    // Characters a URL would need encoded, and a "%41" that must not be decoded to "A".
    const password = "s3%41cret @:/ü%";
    redis = await startTestRedis({ args: ["--requirepass", password] });
    const url = `redis://${redis.host}:${redis.port}`;
    server = runTiercache(["serve", "--port", "0", "--metrics-port", "off", "--redis-url", url, "--redis-key-prefix", "pwtest"], { TIERCACHE_REDIS_PASSWORD: password });
    const address = await listeningAddress(server);
    const raw = createClient(CacheService, address, credentials.createInsecure(), { defaultTimeoutMs: 5_000 });
    const check = new Redis({ host: redis.host, port: redis.port, password, lazyConnect: true });
    try {
      await raw.set({ namespace: "pw", key: "k", value: new TextEncoder().encode("v"), contentType: "text/plain" });
      expect(await check.exists("pwtest:{pw}:k")).toBe(1);
      const got = await raw.get({ namespace: "pw", key: "k" });
      expect(new TextDecoder().decode(got.value)).toBe("v");
    } finally {
      raw.close();
      check.disconnect();
    }

    const both = runTiercache(["serve", "--port", "0", "--metrics-port", "off", "--redis-url", `redis://:${encodeURIComponent(password)}@${redis.host}:${redis.port}`], { TIERCACHE_REDIS_PASSWORD: password });
    expect(await both.exit).toBe(2);
    expect(both.stderr()).toContain("invalid --redis-password (by TIERCACHE_REDIS_PASSWORD): --redis-url carries a password already");
    expect(both.stderr()).not.toContain("s3%41cret");
    expect(both.stderr()).not.toContain(encodeURIComponent(password));
  }, 30_000);
});
