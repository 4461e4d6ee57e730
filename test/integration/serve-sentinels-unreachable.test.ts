import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { closedPort } from "../helpers/closed-port.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { storesOnceReachable } from "../helpers/stores-once-reachable.js";
import { listeningAddress, runTiercache, type TiercacheProcess } from "../helpers/tiercache-process.js";

/**
 * With every Sentinel unreachable, `tiercache serve` never listened: the
 * invalidation channel waited for a subscriber connection that ioredis
 * keeps retrying, so start-up hung, and a SIGTERM (held until start-up
 * ends) did nothing. It now listens, with Redis unavailable, as with an
 * unreachable --redis-url; serves once a Sentinel answers; and stops on
 * SIGTERM.
 */
describe("tiercache serve with every Redis Sentinel unreachable at start", () => {
  const dir = mkdtempSync(join(tmpdir(), "tiercache-sentinels-down-"));
  let server: TiercacheProcess | undefined;
  const started: TestRedis[] = [];
  afterAll(async () => {
    server?.child.kill("SIGKILL");
    for (const redisProcess of started.reverse()) await redisProcess.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts listening, serves once a Sentinel answers, and exits 0 on SIGTERM", async () => {
    const sentinelPort = await closedPort();
    server = runTiercache(["serve", "--port", "0", "--metrics-port", "off", "--data-dir", join(dir, "data"), "--redis-sentinels", `127.0.0.1:${sentinelPort}`, "--redis-sentinel-name", "main"]);
    const address = await listeningAddress(server);
    expect(server.stderr()).toContain("redis not reachable at start");

    const redis = await startTestRedis();
    started.push(redis);
    const configFile = join(dir, "sentinel.conf");
    writeFileSync(configFile, `sentinel monitor main ${redis.host} ${redis.port} 1\n`);
    started.push(await startTestRedis({ configFile, sentinel: true, dir, port: sentinelPort }));
    expect(await storesOnceReachable(address, "late", "k", 15_000)).toBe("v");
    server.child.kill("SIGTERM");
    expect(await server.exit).toBe(0);
  }, 45_000);
});
