import type { MemoryTier } from "../../core/memory-tier.js";
import type { TierCounters } from "../../core/tier-counters.js";
import type { TierName } from "./durable-tier.js";

/** Counters of one tier of one namespace. */
export interface TierStatsSnapshot extends TierCounters {
  tier: TierName;
}

/** Counters of one namespace, memory tier first. */
export interface NamespaceStatsSnapshot {
  namespace: string;
  tiers: TierStatsSnapshot[];
  bytesIn: number;
  bytesStored: number;
  compressionRatio: number;
  degradedWrites: number;
}

/** Counters the engine keeps for a durable tier of one namespace. */
export class DurableCounters {
  hits = 0;
  misses = 0;
  sets = 0;
  deletes = 0;
  expirations = 0;
}

function rate(hits: number, misses: number): number {
  const total = hits + misses;
  return total === 0 ? 0 : hits / total;
}

/** Builds the snapshot of one namespace from its tiers' counters. */
export function snapshotNamespace(
  namespace: string,
  memory: MemoryTier<Uint8Array>,
  durable: { name: TierName; counters: DurableCounters } | undefined,
  written: { bytesIn: number; bytesStored: number; degraded: number },
): NamespaceStatsSnapshot {
  const m = memory.stats;
  const tiers: TierStatsSnapshot[] = [
    {
      tier: "memory",
      hits: m.hits,
      misses: m.misses,
      hitRate: rate(m.hits, m.misses),
      sets: m.sets,
      deletes: m.deletes,
      entries: memory.size,
      bytes: memory.bytes,
      evictionsSize: m.evictionsSize,
      evictionsCount: m.evictionsCount,
      expirations: m.expirations,
    },
  ];
  if (durable) {
    const d = durable.counters;
    tiers.push({
      tier: durable.name,
      hits: d.hits,
      misses: d.misses,
      hitRate: rate(d.hits, d.misses),
      sets: d.sets,
      deletes: d.deletes,
      entries: 0,
      bytes: 0,
      evictionsSize: 0,
      evictionsCount: 0,
      expirations: d.expirations,
    });
  }
  return {
    namespace,
    tiers,
    bytesIn: written.bytesIn,
    bytesStored: written.bytesStored,
    compressionRatio: written.bytesStored === 0 ? 0 : written.bytesIn / written.bytesStored,
    degradedWrites: written.degraded,
  };
}
