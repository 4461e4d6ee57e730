import { describe, expect, it } from "vitest";
import type { AttemptEnd } from "../../server/tiers/attempt-end.js";
import type { RedisGuard } from "../../server/tiers/redis-guard.js";
import { testGuard } from "../helpers/test-guard.js";

/** The guard ends each attempt's AttemptEnd exactly when it stops waiting for it. */
function guard(commandTimeoutMs: number, retries = 0): RedisGuard {
  return testGuard(commandTimeoutMs, retries, { breakerVolumeThreshold: 1_000, breakerResetTimeoutMs: 1_000 });
}

describe("RedisGuard: the end of an attempt", () => {
  it("is open while the attempt runs and ends when it settles", async () => {
    const g = guard(1_000);
    let seen: AttemptEnd | undefined;
    let during: boolean | undefined;
    const result = await g.exec({
      name: "op",
      idempotent: true,
      run: async (attempt) => {
        seen = attempt;
        during = attempt.ended;
        await Promise.resolve();
        return 7;
      },
    });
    expect(result).toBe(7);
    expect(during).toBe(false);
    expect(seen?.ended).toBe(true);
    g.close();
  });

  it("ends at the timeout, before the attempt's own late outcome, and each retry has its own", async () => {
    const g = guard(20, 1);
    const attempts: AttemptEnd[] = [];
    const finish: (() => void)[] = [];
    const outcome = g.exec({
      name: "op",
      idempotent: true,
      run: (attempt) => {
        attempts.push(attempt);
        return new Promise<void>((resolve) => finish.push(resolve));
      },
    });
    await expect(outcome).rejects.toThrow(/timed out/);
    expect(attempts).toHaveLength(2);
    expect(attempts[0]).not.toBe(attempts[1]);
    expect(attempts.every((attempt) => attempt.ended)).toBe(true);
    for (const done of finish) done();
    g.close();
  });

  it("ends when the call is cancelled while the attempt is in flight", async () => {
    const g = guard(10_000);
    const controller = new AbortController();
    let seen: AttemptEnd | undefined;
    let finish!: () => void;
    const outcome = g.exec(
      {
        name: "op",
        idempotent: true,
        run: (attempt) => {
          seen = attempt;
          return new Promise<void>((resolve) => (finish = resolve));
        },
      },
      { deadline: Infinity, signal: controller.signal },
    );
    expect(seen?.ended).toBe(false);
    controller.abort(new Error("client went away"));
    await expect(outcome).rejects.toThrow(/cancelled/);
    expect(seen?.ended).toBe(true);
    finish();
    g.close();
  });

  it("an operation whose run returns a plain value (not a promise) succeeds at once, and its attempt ends with it", async () => {
    const g = guard(50, 2);
    let seen: AttemptEnd | undefined;
    const run = (attempt: AttemptEnd) => ((seen = attempt), 7) as unknown as Promise<number>;
    await expect(g.exec({ name: "op", idempotent: true, run })).resolves.toBe(7);
    expect(seen?.ended).toBe(true);
    expect(g.stats()).toMatchObject({ calls: 1, failures: 0, retries: 0 });
    g.close();
  });
});
