import { expect } from "vitest";
import { RedisGuard, type GuardedOperation, type RedisGuardOptions } from "../../server/tiers/redis-guard.js";
import { silentLogger } from "../../server/logger.js";

/** A read that fails as one to a Redis that is down does. */
export const failingGet: GuardedOperation<string> = { name: "get", idempotent: true, run: () => Promise.reject(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })) };
/** A read that Redis answers. */
export const answeringGet: GuardedOperation<string> = { name: "get", idempotent: true, run: () => Promise.resolve("value") };

/** Opens a {@link testGuard}'s breaker: 4 failed reads, its volume threshold. */
export async function openBreaker(g: RedisGuard): Promise<void> {
  for (let i = 0; i < 4; i++) await g.exec(failingGet).catch(() => undefined);
  expect(g.state).toBe("open");
}

/**
 * A RedisGuard for unit tests: its breaker opens once more than half of at
 * least 4 attempts in a 10 s window failed and stays open a minute; retries wait 1 ms,
 * and jitter is off; `overrides` changes any of that.
 */
export function testGuard(commandTimeoutMs: number, retries: number, overrides: Partial<RedisGuardOptions> = {}): RedisGuard {
  return new RedisGuard({
    commandTimeoutMs,
    retries,
    retryBaseMs: 1,
    retryMaxMs: 1,
    breakerErrorThresholdPercentage: 50,
    breakerVolumeThreshold: 4,
    breakerResetTimeoutMs: 60_000,
    breakerRollingWindowMs: 10_000,
    logger: silentLogger,
    random: () => 0,
    ...overrides,
  });
}
