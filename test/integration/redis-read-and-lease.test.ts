import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CorruptValueError } from "../../core/errors.js";
import { CacheEngine } from "../../server/engine/cache-engine.js";
import { leaseKey, redisKey } from "../../server/tiers/redis-keys.js";
import { RedisTier, type RedisTierCommonOptions } from "../../server/tiers/redis-tier.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { engineWith } from "../helpers/test-engine.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe("GetOrLease over Redis: the read and the lease in one round trip", () => {
  let redis: TestRedis;
  let admin: Redis;
  const tiers: RedisTier[] = [];
  const clock = fakeClock(Date.now());
  let n = 0;

  beforeAll(async () => {
    redis = await startTestRedis();
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    for (const tier of tiers) await tier.close();
    admin?.disconnect();
    await redis?.stop();
  });

  /** An engine over the shared Redis, and its tier (to count calls). */
  async function instance(): Promise<{ engine: CacheEngine; tier: RedisTier }> {
    const tier = await RedisTier.connect({ url: redis.url, keyPrefix: "rl", clock: clock.now });
    tiers.push(tier);
    return { engine: engineWith(clock, tier), tier };
  }

  /** The calls `run` made to Redis through the tier. */
  async function callsOf(tier: RedisTier, run: () => Promise<unknown>): Promise<number> {
    const before = tier.stats().calls;
    await run();
    return tier.stats().calls - before;
  }

  it("absent, fresh, in grace: each answered by one call, as a read then a lease request would answer", async () => {
    const ns = `ns${++n}`;
    const [a, b] = [await instance(), await instance()];
    let absent: Awaited<ReturnType<CacheEngine["getOrLease"]>> | undefined;
    expect(await callsOf(b.tier, async () => (absent = await b.engine.getOrLease(ns, "absent", 30_000, 0)))).toBe(1);
    expect(absent!.found).toBeUndefined();
    expect(await admin.get(leaseKey("rl", ns, "absent"))).toBe(absent!.leaseToken);

    await a.engine.set(ns, { key: "fresh", value: bytes("v"), contentType: "", ttlMs: 60_000 });
    let fresh: Awaited<ReturnType<CacheEngine["getOrLease"]>> | undefined;
    expect(await callsOf(b.tier, async () => (fresh = await b.engine.getOrLease(ns, "fresh", 30_000, 0)))).toBe(1);
    expect(text(fresh!.found?.value)).toBe("v");
    expect(fresh!.found?.tier).toBe("redis");
    expect(fresh!.leaseToken).toBeUndefined();
    expect(await admin.exists(leaseKey("rl", ns, "fresh"))).toBe(0);

    await a.engine.set(ns, { key: "grace", value: bytes("old"), contentType: "", ttlMs: 1_000, graceMs: 60_000 });
    clock.advance(1_500);
    let stale: Awaited<ReturnType<CacheEngine["getOrLease"]>> | undefined;
    expect(await callsOf(b.tier, async () => (stale = await b.engine.getOrLease(ns, "grace", 30_000, 0)))).toBe(1);
    expect(text(stale!.found?.value)).toBe("old");
    expect(stale!.found?.stale).toBe(true);
    expect(stale!.leaseToken).toBeDefined();
    // The other instance's caller gets the stale value and no lease while b's caller computes.
    const other = await a.engine.getOrLease(ns, "grace", 30_000, 0);
    expect(other.leaseToken).toBeUndefined();
    expect(text(other.found?.value)).toBe("old");
  });

  it("a value past its grace is a miss that comes with the lease", async () => {
    const ns = `ns${++n}`;
    const [a, b] = [await instance(), await instance()];
    await a.engine.set(ns, { key: "k", value: bytes("gone"), contentType: "", ttlMs: 1_000, graceMs: 1_000 });
    clock.advance(2_500); // the envelope says gone; Redis's own TTL has not removed it (real time has not passed)
    expect(await admin.exists(redisKey("rl", ns, "k"))).toBe(1);
    const result = await b.engine.getOrLease(ns, "k", 30_000, 0);
    expect(result.found).toBeUndefined();
    expect(result.leaseToken).toBeDefined();
  });

  it("a stored value that is not an envelope fails the call as a read does, and leaves no lease behind", async () => {
    const ns = `ns${++n}`;
    const { engine } = await instance();
    await admin.set(redisKey("rl", ns, "bad"), "not an envelope");
    await expect(engine.getOrLease(ns, "bad", 30_000, 0)).rejects.toBeInstanceOf(CorruptValueError);
    await settle();
    expect(await admin.exists(leaseKey("rl", ns, "bad"))).toBe(0);
  });

  it("Redis full under noeviction (reads served, writes refused): the stale value and a lease kept on this instance, as with a read then a lease request (found by review)", async () => {
    const ns = `ns${++n}`;
    const [a, b] = [await instance(), await instance()];
    await a.engine.set(ns, { key: "fresh", value: bytes("v"), contentType: "", ttlMs: 600_000 });
    await a.engine.set(ns, { key: "grace", value: bytes("old"), contentType: "", ttlMs: 1_000, graceMs: 600_000 });
    clock.advance(1_500);
    const policy = (await admin.config("GET", "maxmemory-policy")) as string[];
    await admin.config("SET", "maxmemory-policy", "noeviction");
    await admin.config("SET", "maxmemory", "1");
    try {
      const stale = await b.engine.getOrLease(ns, "grace", 30_000, 0);
      expect(text(stale.found?.value)).toBe("old");
      expect(stale.found?.stale).toBe(true);
      expect(stale.leaseToken).toBeDefined();
      const absent = await b.engine.getOrLease(ns, "absent", 30_000, 0);
      expect(absent.found).toBeUndefined();
      expect(absent.leaseToken).toBeDefined();
      expect(text((await b.engine.getOrLease(ns, "fresh", 30_000, 0)).found?.value)).toBe("v");
      // The lease is this instance's: a second caller here waits for it rather than computing too.
      expect((await b.engine.getOrLease(ns, "absent", 30_000, 0)).leaseToken).toBeUndefined();
    } finally {
      await admin.config("SET", "maxmemory", "0");
      await admin.config("SET", "maxmemory-policy", policy[1]!);
    }
    expect(await admin.exists(leaseKey("rl", ns, "absent"))).toBe(0);
  });

  it("a GetOrLease that misses the memory tier counts a memory miss, and an expired copy there as an expiration, as a Get does (found by review)", async () => {
    const ns = `ns${++n}`;
    const { engine } = await instance();
    await engine.getOrLease(ns, "absent", 30_000, 0);
    await engine.set(ns, { key: "short", value: bytes("v"), contentType: "", ttlMs: 1_000 });
    clock.advance(1_500);
    await engine.getOrLease(ns, "short", 30_000, 0);
    const memory = engine.stats(ns)[0]!.tiers.find((tier) => tier.tier === "memory")!;
    expect(memory.misses).toBe(2);
    expect(memory.expirations).toBe(1);
    expect(memory.entries).toBe(0);
  });

  it("a reply error that is not a refusal to write (WRONGTYPE) fails the call as it comes, without a read after it (found by review)", async () => {
    const ns = `ns${++n}`;
    const { engine, tier } = await instance();
    await admin.hset(redisKey("rl", ns, "hash"), "field", "value");
    const before = tier.stats();
    await expect(engine.getOrLease(ns, "hash", 30_000, 0)).rejects.toThrow(/leaseReadAcquire failed: redis replied WRONGTYPE/);
    expect(tier.stats().failures - before.failures).toBe(1); // no GET after it (which would fail the same way)
    expect(await admin.exists(leaseKey("rl", ns, "hash"))).toBe(0);
  });
});

describe("GetOrLease over a Redis that stalls mid-call", () => {
  let redis: TestRedis;
  let admin: Redis;
  let tier: RedisTier | undefined;
  beforeAll(async () => {
    redis = await startTestRedis();
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    await tier?.close();
    admin?.disconnect();
    redis?.resume();
    await redis?.stop();
  });

  /**
   * Pauses Redis while GetOrLease misses three keys with `leaseMs` leases (each
   * call must fail), keeps it paused `pausedMs` more, resumes it, and polls:
   * the leases of those keys still held in Redis `withinMs` after resuming
   * (0 as soon as all are gone).
   */
  async function leasesLeftAfterStall(tierOptions: RedisTierCommonOptions & { keyPrefix: string }, leaseMs: number, pausedMs: number, withinMs: number): Promise<number> {
    await tier?.close();
    tier = await RedisTier.connect({ url: redis.url, commandTimeoutMs: 200, ...tierOptions });
    const engine = engineWith(undefined, tier);
    const keys = ["k1", "k2", "k3"];
    redis.pause();
    try {
      const results = await Promise.allSettled(keys.map((key) => engine.getOrLease("ns", key, leaseMs, 0)));
      expect(results.every((r) => r.status === "rejected")).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, pausedMs));
    } finally {
      redis.resume();
    }
    const deadline = Date.now() + withinMs;
    let held = keys.length;
    while (Date.now() < deadline) {
      held = (await Promise.all(keys.map((key) => admin.exists(leaseKey(tierOptions.keyPrefix, "ns", key))))).reduce((a, b) => a + b, 0);
      if (held === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return held;
  }

  it("misses whose script waits in the stalled Redis fail, and the leases it takes once Redis resumes are given back (found by review)", async () => {
    // 600 ms paused: the give-backs time out too, behind the stalled scripts. Before, the leases stayed for their whole 60 s.
    expect(await leasesLeftAfterStall({ keyPrefix: "stall" }, 60_000, 600, 10_000)).toBe(0);
  });

  it("a stall longer than the lease, with the breaker open: the leases the scripts take at resume are still given back (found by review)", async () => {
    // Paused past the lease's 3 s: giving back must not stop then. The scripts run at resume and take 3 s leases;
    // giving back had stopped before, so they stayed until they lapsed.
    expect(await leasesLeftAfterStall({ keyPrefix: "stall2", breakerVolumeThreshold: 1, breakerResetTimeoutMs: 300 }, 3_000, 3_500, 1_500)).toBe(0);
  });
});
