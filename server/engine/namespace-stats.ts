import type { MemoryTier, MemoryTierStats } from "../../core/memory-tier.js";
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
  /** InvalidateTags calls that reached every tier (or may have: an uncertain outcome counts). */
  tagInvalidations: number;
}

/** Counters the engine keeps for a durable tier of one namespace. */
export class DurableCounters {
  hits = 0;
  misses = 0;
  sets = 0;
  deletes = 0;
  expirations = 0;
}

/** Bytes of one archived {@link NamespaceCounters} record (map entry, name, counters). */
export const ARCHIVED_COUNTERS_BYTES = 512;

const ZERO_MEMORY_STATS: MemoryTierStats = Object.freeze({ hits: 0, misses: 0, sets: 0, deletes: 0, evictionsSize: 0, evictionsCount: 0, expirations: 0, rejections: 0 });

/** Every counter of one namespace; outlives the namespace's state (see {@link CounterArchive}). */
export class NamespaceCounters {
  readonly durable = new DurableCounters();
  readonly written = { bytesIn: 0, bytesStored: 0, degraded: 0, tagInvalidations: 0 };
  /** Memory-tier counters of the states this namespace had before the current one. */
  memoryBase: MemoryTierStats = ZERO_MEMORY_STATS;

  /** Adds `other`'s counters to these. */
  merge(other: NamespaceCounters): void {
    this.memoryBase = addMemoryStats(this.memoryBase, other.memoryBase);
    for (const field of ["hits", "misses", "sets", "deletes", "expirations"] as const) this.durable[field] += other.durable[field];
    for (const field of ["bytesIn", "bytesStored", "degraded", "tagInvalidations"] as const) this.written[field] += other.written[field];
  }

  /** These counters, with those of a memory tier that is going away folded into the base. */
  withMemory(stats: Readonly<MemoryTierStats>): this {
    this.memoryBase = addMemoryStats(this.memoryBase, stats);
    return this;
  }
}

/** The sum of two sets of memory-tier counters. */
function addMemoryStats(a: Readonly<MemoryTierStats>, b: Readonly<MemoryTierStats>): MemoryTierStats {
  return {
    hits: a.hits + b.hits,
    misses: a.misses + b.misses,
    sets: a.sets + b.sets,
    deletes: a.deletes + b.deletes,
    evictionsSize: a.evictionsSize + b.evictionsSize,
    evictionsCount: a.evictionsCount + b.evictionsCount,
    expirations: a.expirations + b.expirations,
    rejections: a.rejections + b.rejections,
  };
}

/**
 * The counters of namespaces whose state was forgotten (they held nothing),
 * so that Stats goes on counting when they are used again. Bounded: past
 * `maxRecords`, the least recently retired record is dropped.
 */
export class CounterArchive {
  readonly #records = new Map<string, NamespaceCounters>();
  constructor(readonly maxRecords: number) {}

  /** The counters of `namespace`, taken out of the archive (new ones when it holds none). */
  take(namespace: string): NamespaceCounters {
    const record = this.#records.get(namespace);
    if (record === undefined) return new NamespaceCounters();
    this.#records.delete(namespace);
    return record;
  }

  /** The record of `namespace`, left in the archive (undefined when it has none). */
  peek(namespace: string): NamespaceCounters | undefined {
    return this.#records.get(namespace);
  }

  /** Adds counters of a call that had a state of its own (past max-namespaces) to the namespace's record. */
  add(namespace: string, counters: NamespaceCounters): void {
    const record = this.#records.get(namespace);
    if (record === undefined) this.retire(namespace, counters);
    else record.merge(counters);
  }

  /** Keeps the counters of a namespace whose state goes away. */
  retire(namespace: string, counters: NamespaceCounters): void {
    const earlier = this.#records.get(namespace); // counters of a call past max-namespaces that ended while the state was held
    if (earlier !== undefined) counters.merge(earlier);
    this.#records.delete(namespace);
    this.#records.set(namespace, counters);
    if (this.#records.size > this.maxRecords) this.#records.delete(this.#records.keys().next().value!);
  }

  get size(): number {
    return this.#records.size;
  }

  /** Every record, least recently retired first. */
  records(): IterableIterator<[string, NamespaceCounters]> {
    return this.#records.entries();
  }
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
  written: { bytesIn: number; bytesStored: number; degraded: number; tagInvalidations: number },
  memoryBase: MemoryTierStats = ZERO_MEMORY_STATS,
): NamespaceStatsSnapshot {
  const m = addMemoryStats(memoryBase, memory.stats);
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
    tagInvalidations: written.tagInvalidations,
  };
}
