import { Registry } from "prom-client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { CacheEngine } from "../../server/engine/cache-engine.js";
import { readiness } from "../../server/observability/readiness.js";
import { RPC_DURATION_BUCKETS, RpcMetrics } from "../../server/observability/rpc-metrics.js";
import { bucketQuantile, StatusReporter } from "../../server/observability/status-report.js";

/** Cumulative bucket counts for observations falling in the given bucket indexes (last index = +Inf). */
function cumulative(observations: Record<number, number>): number[] {
  const counts = new Array<number>(RPC_DURATION_BUCKETS.length + 1).fill(0);
  for (const [index, n] of Object.entries(observations)) for (let i = Number(index); i < counts.length; i++) counts[i]! += n;
  return counts;
}

describe("bucketQuantile", () => {
  it("is null without observations", () => {
    expect(bucketQuantile(0.5, cumulative({}))).toBeNull();
  });

  it("interpolates within the bucket holding the rank, as histogram_quantile does", () => {
    // 100 observations in (0.0001, 0.00025]: the median is halfway through that bucket.
    const buckets = cumulative({ 2: 100 });
    expect(bucketQuantile(0.5, buckets)).toBeCloseTo(0.0001 + (0.00025 - 0.0001) * 0.5, 10);
    // 99 fast calls and 1 slow one: p99 stays in the fast bucket, p100 reaches the slow one.
    const mixed = cumulative({ 0: 99, 10: 1 });
    expect(bucketQuantile(0.99, mixed)).toBeLessThanOrEqual(RPC_DURATION_BUCKETS[0]!);
    expect(bucketQuantile(1, mixed)).toBeGreaterThan(RPC_DURATION_BUCKETS[9]!);
  });

  it("reports the highest bound for observations past it", () => {
    expect(bucketQuantile(0.5, cumulative({ [RPC_DURATION_BUCKETS.length]: 3 }))).toBe(RPC_DURATION_BUCKETS[RPC_DURATION_BUCKETS.length - 1]);
  });
});

describe("readiness", () => {
  const remote = { name: "redis", breaker: "closed", reachable: true, canAnnounce: true };
  it("is ready without a remote tier, or with a healthy one", () => {
    expect(readiness({ draining: false })).toEqual({ ready: true });
    expect(readiness({ draining: false, remote })).toEqual({ ready: true });
  });

  it("says why it is not ready", () => {
    expect(readiness({ draining: true, remote })).toEqual({ ready: false, reason: "draining" });
    expect(readiness({ draining: false, remote: { ...remote, breaker: "open" } })).toEqual({ ready: false, reason: "redis circuit breaker open" });
    expect(readiness({ draining: false, remote: { ...remote, breaker: "half-open" } })).toEqual({ ready: true });
    expect(readiness({ draining: false, remote: { ...remote, reachable: false } })).toEqual({ ready: false, reason: "redis unreachable" });
    expect(readiness({ draining: false, remote: { ...remote, canAnnounce: false } })).toEqual({ ready: false, reason: "redis invalidation channel down" });
  });
});

describe("StatusReporter", () => {
  afterEach(() => vi.useRealTimers());

  it("rates the window between samples, reuses a report younger than 400 ms, and keeps few samples", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(1_000_000);
    const engine = new CacheEngine({
      codec: new ValueCodec(),
      maxKeyBytes: 1024,
      maxBatch: 100,
      maxNamespaces: 10,
      durable: undefined,
      settingsFor: () => ({ defaultTtlMs: 0, ttlJitter: 0, memoryMaxEntries: 100, memoryMaxBytes: 1 << 20, policy: "lru" }),
    });
    const reporter = new StatusReporter({
      engine,
      rpc: new RpcMetrics(new Registry(), CacheService),
      readiness: () => ({ ready: true }),
      breaker: () => "",
      durableFootprint: () => undefined,
    });
    await engine.set("ns", { key: "k", value: new Uint8Array([1]), contentType: "", ttlMs: 0, graceMs: 0 });
    await engine.get("ns", "k");
    const first = reporter.report();
    expect(first.windowSeconds).toBeNull();
    expect(first.hitRatio).toBeNull();
    expect(first.totals).toMatchObject({ hits: 1, misses: 0 });
    expect(first.namespaces).toEqual([{ namespace: "ns", entries: 1, bytes: expect.any(Number), hits: 1, misses: 0, sets: 1, degradedWrites: 0 }]);

    vi.setSystemTime(1_000_300);
    expect(reporter.report()).toBe(first);

    // In the next two seconds: three hits and one miss.
    for (const key of ["k", "k", "k", "absent"]) await engine.get("ns", key);
    vi.setSystemTime(1_002_000);
    const second = reporter.report();
    expect(second.windowSeconds).toBe(2);
    expect(second.hitRatio).toBe(0.75);
    expect(second.requestsPerSecond).toBe(0);
    expect(second.latency).toEqual({ p50: null, p99: null });

    // Samples older than the window stop serving as the base, however many reports are asked for.
    for (let t = 1_002_500; t <= 1_060_000; t += 500) {
      vi.setSystemTime(t);
      reporter.report();
    }
    vi.setSystemTime(1_060_500);
    expect(reporter.report().windowSeconds).toBeLessThanOrEqual(10);

    // A script polling every 30 s gets rates over the 30 s since its last poll.
    await engine.get("ns", "k");
    vi.setSystemTime(1_090_500);
    const slow = reporter.report();
    expect(slow.windowSeconds).toBe(30);
    expect(slow.hitRatio).toBe(1);
    vi.setSystemTime(1_120_500);
    expect(reporter.report().windowSeconds).toBe(30);
  });
});
