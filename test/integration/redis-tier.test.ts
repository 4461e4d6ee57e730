import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { InvalidArgumentError, TierUnavailableError } from "../../core/errors.js";
import { RedisTier, resolveRedisTierOptions } from "../../server/tiers/redis-tier.js";
import { describeDurableTier } from "../conformance/durable-tier-suite.js";
import { freePort, startTestRedis, type TestRedis } from "../helpers/redis-server.js";

const codec = new ValueCodec();
const envelope = (value: string, expiresAt = 0) => codec.encode(new TextEncoder().encode(value), "text/plain", expiresAt);

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis({ args: [] }); // always our own server: the tests read INFO and MONITOR-style counters
});
afterAll(async () => {
  await redis?.stop();
});

describeDurableTier("redis (standalone)", async (clock) => {
  const tier = await RedisTier.connect({ url: redis.url, clock: clock.now, keyPrefix: "conf" });
  return { tier, dispose: () => tier.close() };
});

describe("RedisTier (standalone) specifics", () => {
  let tier: RedisTier;
  let raw: Redis;
  beforeAll(async () => {
    tier = await RedisTier.connect({ url: redis.url, keyPrefix: "spec" });
    raw = new Redis(redis.url, { lazyConnect: true });
    await raw.connect();
  });
  afterAll(async () => {
    await tier?.close();
    raw?.disconnect();
  });

  it("stores under prefix:{namespace}:key, with the namespace as a Cluster hash tag", async () => {
    await tier.set("ns-a", { key: "user:1", envelope: envelope("v"), expiresAt: 0 });
    const keys = await raw.keys("spec:*");
    expect(keys).toContain("spec:{ns-a}:user:1");
    const stored = await raw.getBuffer("spec:{ns-a}:user:1");
    expect(codec.decode(stored!).contentType).toBe("text/plain");
    expect(await raw.pttl("spec:{ns-a}:user:1")).toBe(-1); // no expiry
  });

  it("sets the TTL atomically with the value (SET … PX), and touch moves it", async () => {
    const expiresAt = Date.now() + 60_000;
    await tier.set("ns-ttl", { key: "k", envelope: envelope("v", expiresAt), expiresAt });
    const pttl = await raw.pttl("spec:{ns-ttl}:k");
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
    expect(await tier.touch("ns-ttl", "k", 0)).toBe(true);
    expect(await raw.pttl("spec:{ns-ttl}:k")).toBe(-1);
    expect(ValueCodec.expiresAt((await tier.get("ns-ttl", "k"))!)).toBe(0);
    const later = Date.now() + 120_000;
    expect(await tier.touch("ns-ttl", "k", later)).toBe(true);
    expect(await raw.pttl("spec:{ns-ttl}:k")).toBeGreaterThan(60_000);
    expect(ValueCodec.expiresAt((await tier.get("ns-ttl", "k"))!)).toBe(later);
  });

  it("treats a write whose expiry has passed as a delete", async () => {
    await tier.set("ns-past", { key: "k", envelope: envelope("v"), expiresAt: 0 });
    const past = Date.now() - 1;
    await tier.set("ns-past", { key: "k", envelope: envelope("v", past), expiresAt: past });
    expect(await raw.exists("spec:{ns-past}:k")).toBe(0);
  });

  it("getMany is one MGET, setMany one MULTI/EXEC (one MSET of the values without expiry), deleteMany one transaction", async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
    await raw.config("RESETSTAT");
    await tier.setMany("ns-rt", keys.map((key) => ({ key, envelope: envelope(key), expiresAt: 0 })));
    const found = await tier.getMany("ns-rt", keys);
    expect(found.every((v) => v !== undefined)).toBe(true);
    expect(await tier.deleteMany("ns-rt", [...keys, "absent"])).toBe(50);
    const stats = parseCommandStats(await raw.info("commandstats"));
    expect(stats.mget).toBe(1);
    expect(stats.get ?? 0).toBe(0);
    expect(stats.multi).toBe(2);
    expect(stats.exec).toBe(2);
    expect(stats.mset).toBe(1);
    expect(stats.set ?? 0).toBe(0);
    expect(stats.unlink).toBe(1);
  });

  it("setMany of 100k values without expiry sends MSETs of 1,000 keys (one spread of every key overflowed the stack)", async () => {
    const patient = await RedisTier.connect({ url: redis.url, keyPrefix: "spec", commandTimeoutMs: 30_000 });
    try {
      const value = envelope("v");
      await raw.config("RESETSTAT");
      await patient.setMany("ns-huge", Array.from({ length: 100_000 }, (_, i) => ({ key: `k${i}`, envelope: value, expiresAt: 0 })));
      expect((await patient.getMany("ns-huge", ["k0", "k99999"])).every((v) => v !== undefined)).toBe(true);
      expect(parseCommandStats(await raw.info("commandstats")).mset).toBe(100);
    } finally {
      await patient.close();
    }
  }, 60_000);

  it("setMany writes each key's last entry, with or without expiry, replacing an older expiry", async () => {
    const soon = Date.now() + 60_000;
    const past = Date.now() - 1;
    await tier.set("ns-mix", { key: "lasting", envelope: envelope("old", soon), expiresAt: soon });
    await tier.set("ns-mix", { key: "gone", envelope: envelope("old"), expiresAt: 0 });
    await raw.config("RESETSTAT");
    await tier.setMany("ns-mix", [
      { key: "a", envelope: envelope("a1"), expiresAt: 0 },
      { key: "b", envelope: envelope("b1", soon), expiresAt: soon },
      { key: "a", envelope: envelope("a2", soon), expiresAt: soon },
      { key: "b", envelope: envelope("b2"), expiresAt: 0 },
      { key: "lasting", envelope: envelope("new"), expiresAt: 0 },
      { key: "gone", envelope: envelope("gone", past), expiresAt: past },
    ]);
    const text = async (key: string) => {
      const found = await tier.get("ns-mix", key);
      return found === undefined ? undefined : new TextDecoder().decode(codec.decode(found).value);
    };
    expect([await text("a"), await text("b"), await text("lasting"), await text("gone")]).toEqual(["a2", "b2", "new", undefined]);
    expect(await raw.pttl("spec:{ns-mix}:a")).toBeGreaterThan(0);
    expect(await raw.pttl("spec:{ns-mix}:b")).toBe(-1);
    expect(await raw.pttl("spec:{ns-mix}:lasting")).toBe(-1);
    expect(await raw.exists("spec:{ns-mix}:gone")).toBe(0);
    const stats = parseCommandStats(await raw.info("commandstats"));
    expect([stats.mset, stats.set, stats.unlink, stats.exec]).toEqual([1, 1, 1, 1]);
  });

  it("counts only live keys on delete: a key expired by the clock but still in Redis is not counted", async () => {
    const expiresAt = Date.now() + 60_000;
    let now = Date.now();
    const clocked = await RedisTier.connect({ url: redis.url, keyPrefix: "spec", clock: () => now });
    try {
      await clocked.setMany("ns-del", [
        { key: "old", envelope: envelope("o", expiresAt), expiresAt },
        { key: "new", envelope: envelope("n"), expiresAt: 0 },
      ]);
      now = expiresAt + 1;
      expect(await raw.exists("spec:{ns-del}:old")).toBe(1);
      expect(await clocked.has("ns-del", "old")).toBe(false);
      expect(await clocked.deleteMany("ns-del", ["old", "new", "new"])).toBe(1);
      expect(await raw.exists("spec:{ns-del}:old", "spec:{ns-del}:new")).toBe(0);
    } finally {
      await clocked.close();
    }
  });

  it("clear removes only its namespace, including keys that look like glob patterns", async () => {
    await tier.setMany("ns*", [{ key: "a", envelope: envelope("1"), expiresAt: 0 }]);
    await tier.setMany("ns?x", [{ key: "b", envelope: envelope("2"), expiresAt: 0 }]);
    await tier.setMany("nsAx", [{ key: "c", envelope: envelope("3"), expiresAt: 0 }]);
    await tier.clear("ns*");
    await tier.clear("ns?x");
    expect(await raw.exists("spec:{ns*}:a", "spec:{ns?x}:b")).toBe(0);
    expect(await raw.exists("spec:{nsAx}:c")).toBe(1);
  });

  it("rejects namespaces that would break the hash tag", async () => {
    await expect(tier.get("a}b", "k")).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(tier.get("", "k")).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("connects to a password-protected Redis through the URL or the password option, and fails clearly without it", async () => {
    const secured = await startTestRedis({ args: ["--requirepass", "s3cret-pw"] });
    try {
      const ok = await RedisTier.connect({ url: `redis://:s3cret-pw@${secured.host}:${secured.port}/2` });
      await ok.set("ns", { key: "k", envelope: envelope("v"), expiresAt: 0 });
      expect(await ok.has("ns", "k")).toBe(true);
      await ok.close();
      const check = new Redis({ host: secured.host, port: secured.port, password: "s3cret-pw", db: 2, lazyConnect: true });
      await check.connect();
      expect(await check.exists("tiercache:{ns}:k")).toBe(1);
      check.disconnect();

      const byOption = await RedisTier.connect({ url: `redis://${secured.host}:${secured.port}/2`, password: "s3cret-pw" });
      expect(await byOption.has("ns", "k")).toBe(true);
      await byOption.close();
      const userOnly = await RedisTier.connect({ url: `redis://default@${secured.host}:${secured.port}/2`, password: "s3cret-pw" });
      expect(await userOnly.has("ns", "k")).toBe(true);
      await userOnly.close();
      await expect(RedisTier.connect({ url: `redis://:s3cret-pw@${secured.host}:${secured.port}`, password: "s3cret-pw" })).rejects.toThrow(/give it in one place/);

      const wrong = await RedisTier.connect({ url: `redis://:wrong-pw@${secured.host}:${secured.port}`, connectTimeoutMs: 500, retries: 0 });
      const err = await wrong.get("ns", "k").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TierUnavailableError);
      expect((err as Error).message).not.toContain("wrong-pw");
      await wrong.close();
    } finally {
      await secured.stop();
    }
  });

  it("finds the master through Sentinel", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tiercache-sentinel-"));
    const configFile = join(dir, "sentinel.conf");
    writeFileSync(configFile, `sentinel monitor main ${redis.host} ${redis.port} 1\n`);
    const sentinel = await startTestRedis({ configFile, sentinel: true, dir });
    try {
      const viaSentinel = await RedisTier.connect({ sentinels: [`${sentinel.host}:${sentinel.port}`], sentinelName: "main", keyPrefix: "spec" });
      await viaSentinel.set("ns-sentinel", { key: "k", envelope: envelope("v"), expiresAt: 0 });
      await viaSentinel.close();
      expect(await raw.exists("spec:{ns-sentinel}:k")).toBe(1);
    } finally {
      await sentinel.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("starts without Redis, fails as unavailable, and serves once Redis is up", async () => {
    const port = await freePort();
    const started = Date.now();
    const late = await RedisTier.connect({ url: `redis://127.0.0.1:${port}`, breakerVolumeThreshold: 1000 });
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(late.get("ns", "k")).rejects.toBeInstanceOf(TierUnavailableError);
    await expect(late.set("ns", { key: "k", envelope: envelope("v"), expiresAt: 0 })).rejects.toBeInstanceOf(TierUnavailableError);
    const server = await startTestRedis({ port });
    try {
      const deadline = Date.now() + 10_000;
      let stored = false;
      while (!stored && Date.now() < deadline) {
        stored = await late.set("ns", { key: "k", envelope: envelope("v"), expiresAt: 0 }).then(
          () => true,
          () => new Promise<boolean>((r) => setTimeout(() => r(false), 50)),
        );
      }
      expect(stored).toBe(true);
      expect(await late.has("ns", "k")).toBe(true);
    } finally {
      await late.close();
      await server.stop();
    }
  });

  it("resolves options once, with clear errors and no secrets", () => {
    expect(() => resolveRedisTierOptions({} as never)).toThrow(/exactly one of url, clusterNodes or sentinels/);
    expect(() => resolveRedisTierOptions({ url: "http://user:topsecret@x" })).toThrow(InvalidArgumentError);
    expect(() => resolveRedisTierOptions({ url: "http://user:topsecret@x" })).not.toThrow(/topsecret/);
    expect(() => resolveRedisTierOptions({ url: "not a url :topsecret" })).not.toThrow(/topsecret/);
    expect(() => resolveRedisTierOptions({ clusterNodes: ["127.0.0.1"] })).toThrow(/host:port/);
    expect(() => resolveRedisTierOptions({ sentinels: ["127.0.0.1:26379"] } as never)).toThrow(/sentinelName/);
    expect(() => resolveRedisTierOptions({ url: "redis://x", keyPrefix: "a{b" })).toThrow(/keyPrefix/);
    expect(() => resolveRedisTierOptions({ url: "redis://x", commandTimeoutMs: 0 })).toThrow(/commandTimeoutMs/);
    expect(() => resolveRedisTierOptions({ url: "redis://x", retryBaseMs: 50, retryMaxMs: 10 })).toThrow(/retryMaxMs/);
    // Each becomes a timer's delay, which Node cuts to 1 ms past 2^31-1.
    for (const name of ["commandTimeoutMs", "connectTimeoutMs", "retryBaseMs", "retryMaxMs", "breakerResetTimeoutMs", "breakerRollingWindowMs"] as const) {
      expect(() => resolveRedisTierOptions({ url: "redis://x", [name]: 2 ** 31 }), name).toThrow(new RegExp(`${name} must be an integer in .*\\.\\.2147483647`));
      expect(() => resolveRedisTierOptions({ url: "redis://x", ...(name === "retryBaseMs" && { retryMaxMs: 2 ** 31 - 1 }), [name]: 2 ** 31 - 1 }), name).not.toThrow();
    }
    const resolved = resolveRedisTierOptions({ clusterNodes: ["10.0.0.1:7000", "[::1]:7001"] });
    expect(resolved.target).toEqual({ kind: "cluster", nodes: [{ host: "10.0.0.1", port: 7000 }, { host: "::1", port: 7001 }] });
    expect(resolved).toMatchObject({ keyPrefix: "tiercache", commandTimeoutMs: 500, retries: 2, retryBaseMs: 20, retryMaxMs: 200 });
    expect(resolved).toMatchObject({ breakerErrorThresholdPercentage: 50, breakerVolumeThreshold: 10, breakerResetTimeoutMs: 2000, breakerRollingWindowMs: 10_000 });
  });
});

/** `cmdstat_mget:calls=1,…` lines -> { mget: 1 }. */
function parseCommandStats(info: string): Record<string, number> {
  const stats: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats[match[1]!] = Number(match[2]);
  return stats;
}
