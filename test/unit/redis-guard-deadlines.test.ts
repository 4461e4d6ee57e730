import { describe, expect, it } from "vitest";
import type { AttemptEnd } from "../../server/tiers/attempt-end.js";
import type { GuardedOperation, RedisGuard } from "../../server/tiers/redis-guard.js";
import { testGuard } from "../helpers/test-guard.js";

/** A guard whose breaker opens once half of at least 4 attempts in its window failed. */
function guard(commandTimeoutMs: number): RedisGuard {
  return testGuard(commandTimeoutMs, 1);
}

/** An operation whose reply takes `ms` (Redis busy, not down). */
const replyAfter = (ms: number, seen?: AttemptEnd[]): GuardedOperation<string> => ({
  name: "get",
  idempotent: true,
  run: (attempt) => (seen?.push(attempt), new Promise((resolve) => setTimeout(() => resolve("value"), ms))),
});

describe("RedisGuard: a caller's short deadline is not Redis's failure", () => {
  it("calls whose deadline passes before a slow-but-answering Redis replies fail alone: the breaker stays closed for callers with time", async () => {
    const g = guard(500);
    const seen: AttemptEnd[] = [];
    // 40 ms is short of the 100 ms reply but long enough that a busy machine still starts the attempt in time;
    // each call has its own deadline, so a stall of the process spoils only the call it falls on.
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () => g.exec(replyAfter(100, seen), { deadline: Date.now() + 40 }).then(() => "ok", (err: Error) => err.message)),
    );
    // An attempt that began states the time it had left (at most 40 ms); one that could not begin in time says so.
    for (const outcome of outcomes) expect(outcome).toMatch(/^redis get failed: (timed out after \d+ ms|deadline passed)$/);
    const timedOut = outcomes.filter((outcome) => outcome.includes("timed out after"));
    for (const outcome of timedOut) expect(Number(/after (\d+) ms/.exec(outcome)?.[1])).toBeLessThanOrEqual(40);
    // At least the breaker's volume threshold of attempts must have run into the caller's deadline for this to test anything.
    expect(timedOut.length).toBeGreaterThanOrEqual(4);
    expect(seen.length).toBe(timedOut.length);
    expect(seen.every((attempt) => attempt.ended)).toBe(true);
    await new Promise((r) => setTimeout(r, 150)); // the abandoned attempts answer, inside the breaker
    expect(g.state).toBe("closed");
    await expect(g.exec(replyAfter(5), { deadline: Date.now() + 1_000 })).resolves.toBe("value");
    expect(g.stats()).toMatchObject({ calls: 21, failures: 20, timeouts: timedOut.length, shortCircuited: 0, breakerOpens: 0 });
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
