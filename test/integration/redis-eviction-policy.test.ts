import { afterEach, describe, expect, it } from "vitest";
import type { Logger } from "../../server/logger.js";
import { RedisTier } from "../../server/tiers/redis-tier.js";
import { freePort, startTestRedis, type TestRedis } from "../helpers/redis-server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A logger that keeps its warnings. */
function capturingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug() {}, info() {}, warn: (message) => void warnings.push(message), error() {} };
}

describe("Redis eviction policy check (the tag epochs hash has no TTL: an allkeys-* policy may evict it)", () => {
  const started: TestRedis[] = [];
  let tier: RedisTier | undefined;
  afterEach(async () => {
    await tier?.close();
    tier = undefined;
    for (const redis of started.splice(0)) await redis.stop();
  });

  async function redisWith(args: string[], port?: number): Promise<TestRedis> {
    const redis = await startTestRedis(port === undefined ? { args } : { args, port });
    started.push(redis);
    return redis;
  }

  it("warns at start-up when maxmemory-policy is allkeys-lru", async () => {
    const redis = await redisWith(["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"]);
    const logger = capturingLogger();
    tier = await RedisTier.connect({ url: redis.url, keyPrefix: "ev", logger });
    expect(tier.evictionPolicy).toEqual({ kind: "evicts-tags", policy: "allkeys-lru" });
    expect(logger.warnings.some((w) => /allkeys-lru MAY EVICT THE TAG EPOCHS/.test(w))).toBe(true);
  });

  it("says nothing under noeviction or a volatile-* policy", async () => {
    for (const policy of ["noeviction", "volatile-lru"]) {
      const redis = await redisWith(["--maxmemory", "4mb", "--maxmemory-policy", policy]);
      const logger = capturingLogger();
      tier = await RedisTier.connect({ url: redis.url, keyPrefix: "ev", logger });
      expect(tier.evictionPolicy).toEqual({ kind: "safe", policy });
      expect(logger.warnings).toEqual([]);
      await tier.close();
      tier = undefined;
    }
  });

  it("warns that it could not check when CONFIG is disabled, and still serves", async () => {
    const redis = await redisWith(["--rename-command", "CONFIG", ""]);
    const logger = capturingLogger();
    tier = await RedisTier.connect({ url: redis.url, keyPrefix: "ev", logger });
    expect(tier.evictionPolicy?.kind).toBe("unknown");
    expect(logger.warnings.some((w) => /could not check the Redis eviction policy/.test(w))).toBe(true);
    await tier.set("ns", { key: "k", envelope: new Uint8Array([1]), expiresAt: 0 });
  });

  it("checks again on reconnect: a Redis restarted with allkeys-lru is warned about", async () => {
    const port = await freePort();
    const first = await redisWith(["--maxmemory-policy", "noeviction"], port);
    const logger = capturingLogger();
    tier = await RedisTier.connect({ url: first.url, keyPrefix: "ev", logger });
    expect(tier.evictionPolicy?.kind).toBe("safe");
    await first.stop();
    started.splice(started.indexOf(first), 1);
    await redisWith(["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lfu"], port);
    for (let i = 0; i < 400 && tier.evictionPolicy?.kind !== "evicts-tags"; i++) await sleep(50);
    expect(tier.evictionPolicy).toEqual({ kind: "evicts-tags", policy: "allkeys-lfu" });
    expect(logger.warnings.some((w) => /allkeys-lfu MAY EVICT/.test(w))).toBe(true);
  });
});
