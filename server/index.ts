/**
 * tiercache/server: run the cache service inside your own program.
 * @module
 */
export { startServer, type RunningServer, type ServerDependencies } from "./server.js";
export { resolveConfig, defaultConfig, ConfigError, OPTIONS, type ServerConfig, type StorageKind } from "./config.js";
export { CacheEngine, type CacheEngineOptions, type NamespaceSettings, type FoundValue, type ValueToSet } from "./engine/cache-engine.js";
export type { DurableTier, DurableWrite, TierName } from "./engine/durable-tier.js";
export type { NamespaceStatsSnapshot, TierStatsSnapshot } from "./engine/namespace-stats.js";
export { LmdbTier, type LmdbTierOptions } from "./tiers/lmdb-tier.js";
export { jsonLogger, silentLogger, type Logger, type LogLevel } from "./logger.js";
