import { afterEach, describe, expect, it, vi } from "vitest";
import { RedisGuard, type GuardedOperation } from "../../server/tiers/redis-guard.js";
import { silentLogger } from "../../server/logger.js";

/**
 * The breaker keeps a rolling window of the calls it saw. Its bookkeeping
 * must not grow with that window: opossum, by default, sorted the latency of
 * every call in the window on each failure and once a second, so after 200k
 * calls in a 10 s window each failed call held the event loop for about
 * 67 ms, and a burst of failures stalled the server for seconds.
 */
function guard(): RedisGuard {
  return new RedisGuard({
    commandTimeoutMs: 1_000,
    retries: 0,
    retryBaseMs: 1,
    retryMaxMs: 1,
    breakerErrorThresholdPercentage: 50,
    breakerVolumeThreshold: 1_000_000,
    breakerResetTimeoutMs: 1_000,
    breakerRollingWindowMs: 10_000,
    logger: silentLogger,
    random: () => 0,
  });
}

const ok: GuardedOperation<number> = { name: "get", idempotent: true, run: () => Promise.resolve(1) };
const failing: GuardedOperation<number> = { name: "get", idempotent: true, run: () => Promise.reject(new Error("connection reset")) };

/** Elements handed to Array.prototype.sort while `body` runs. */
async function sortedElements(body: () => Promise<void>): Promise<number> {
  const sort = Array.prototype.sort;
  let elements = 0;
  const spy = vi.spyOn(Array.prototype, "sort").mockImplementation(function (this: unknown[], compare?: (a: unknown, b: unknown) => number) {
    elements += this.length;
    return sort.call(this, compare);
  });
  try {
    await body();
  } finally {
    spy.mockRestore();
  }
  return elements;
}

async function succeed(g: RedisGuard, calls: number): Promise<void> {
  for (let done = 0; done < calls; done += 1_000) await Promise.all(Array.from({ length: 1_000 }, () => g.exec(ok)));
}

describe("RedisGuard: the breaker's window costs nothing per call", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("a failure after many successes does not sort the window's latencies", async () => {
    const g = guard();
    await succeed(g, 20_000);
    const elements = await sortedElements(async () => {
      for (let i = 0; i < 10; i++) await expect(g.exec(failing)).rejects.toThrow(/redis get failed/);
    });
    expect(elements).toBeLessThan(1_000);
    expect(g.stats()).toMatchObject({ calls: 20_010, failures: 10 });
    g.close();
  });

  it("no timer sorts them either as the window turns", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "setTimeout", "clearTimeout", "Date"] });
    const g = guard();
    await succeed(g, 20_000);
    const elements = await sortedElements(async () => {
      await vi.advanceTimersByTimeAsync(3_000);
    });
    expect(elements).toBeLessThan(1_000);
    g.close();
  });
});
