import { ValueCodec } from "../../core/codec.js";
import { CacheEngine, type CacheEngineOptions } from "../../server/engine/cache-engine.js";
import type { DurableTier } from "../../server/engine/durable-tier.js";
import type { FakeClock } from "./fake-clock.js";

/**
 * A small CacheEngine for tests, over `durable` (a fake or a real tier such as
 * a RedisTier): LRU memory of 100 entries, batches of 100, 10 namespaces, the
 * fake clock (the system clock when none); `extra` overrides any option.
 */
export function engineWith(
  clock: FakeClock | undefined,
  durable: DurableTier | undefined,
  settings: Partial<{ defaultTtlMs: number; memoryMaxEntries: number; ttlJitter: number }> = {},
  extra: Partial<CacheEngineOptions> = {},
): CacheEngine {
  const options: CacheEngineOptions = {
    durable,
    codec: new ValueCodec(),
    maxKeyBytes: 1024,
    maxBatch: 100,
    maxNamespaces: 10,
    ...(clock && { clock: clock.now }),
    settingsFor: () => ({ defaultTtlMs: 0, ttlJitter: 0, memoryMaxEntries: 100, memoryMaxBytes: 1 << 20, policy: "lru", ...settings }),
    ...extra,
  };
  return new CacheEngine(options);
}
