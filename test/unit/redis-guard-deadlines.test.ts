import { describe, expect, it } from "vitest";
import type { AttemptEnd } from "../../server/tiers/attempt-end.js";
import { RedisGuard, type GuardedOperation } from "../../server/tiers/redis-guard.js";
import { silentLogger } from "../../server/logger.js";

/** A guard whose breaker opens once half of at least 4 attempts in its window failed. */
function guard(commandTimeoutMs: number): RedisGuard {
  return new RedisGuard({
    commandTimeoutMs,
    retries: 1,
    retryBaseMs: 1,
    retryMaxMs: 1,
    breakerErrorThresholdPercentage: 50,
    breakerVolumeThreshold: 4,
    breakerResetTimeoutMs: 60_000,
    breakerRollingWindowMs: 10_000,
    logger: silentLogger,
    random: () => 0,
  });
}

/** An operation whose reply takes `ms` (Redis busy, not down). */
const replyAfter = (ms: number, seen?: AttemptEnd[]): GuardedOperation<string> => ({
  name: "get",
  idempotent: true,
  run: (attempt) => (seen?.push(attempt), new Promise((resolve) => setTimeout(() => resolve("value"), ms))),
});

describe("RedisGuard: a caller's short deadline is not Redis's failure", () => {
  it("calls whose deadline passes before a slow-but-answering Redis replies fail alone: the breaker stays closed for callers with time", async () => {
    const g = guard(200);
    const seen: AttemptEnd[] = [];
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () => g.exec(replyAfter(30, seen), { deadline: Date.now() + 3 }).then(() => "ok", (err: Error) => err.message)),
    );
    // The message states the time left when the attempt began: 3 ms, or less when the clock ticked in between.
    for (const outcome of outcomes) expect(outcome).toMatch(/^redis get failed: timed out after [1-3] ms$/);
    expect(seen.every((attempt) => attempt.ended)).toBe(true);
    await new Promise((r) => setTimeout(r, 60)); // the abandoned attempts answer, inside the breaker
    expect(g.state).toBe("closed");
    await expect(g.exec(replyAfter(5), { deadline: Date.now() + 1_000 })).resolves.toBe("value");
    expect(g.stats()).toMatchObject({ calls: 21, failures: 20, timeouts: 20, shortCircuited: 0, breakerOpens: 0 });
    g.close();
  });

  it("attempts that use up the whole command timeout still open it", async () => {
    const g = guard(10);
    // Two calls of two attempts each (one retry): four timeouts in the window.
    for (let i = 0; i < 2; i++) await expect(g.exec(replyAfter(200))).rejects.toThrow(/timed out after 10 ms/);
    expect(g.state).toBe("open");
    await expect(g.exec(replyAfter(1), { deadline: Date.now() + 1_000 })).rejects.toThrow(/circuit breaker open/);
    g.close();
  });
});
