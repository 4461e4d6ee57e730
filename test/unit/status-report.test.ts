import { describe, expect, it } from "vitest";
import { readiness } from "../../server/observability/readiness.js";
import { RPC_DURATION_BUCKETS } from "../../server/observability/rpc-metrics.js";
import { bucketQuantile } from "../../server/observability/status-report.js";

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
