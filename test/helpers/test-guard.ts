import { RedisGuard, type RedisGuardOptions } from "../../server/tiers/redis-guard.js";
import { silentLogger } from "../../server/logger.js";

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
