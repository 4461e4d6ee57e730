/** Counters of one tier of one namespace, as the Stats RPC reports them (client and server share this shape). */
export interface TierCounters {
  /** Reads this tier answered with a value. */
  hits: number;
  /** Reads this tier could not answer. */
  misses: number;
  /** hits / (hits + misses), or 0 before the first read. */
  hitRate: number;
  /** Values written to this tier. */
  sets: number;
  /** Keys removed by Delete, DeleteMany or Clear. */
  deletes: number;
  /** Entries held now (memory tier only). */
  entries: number;
  /** Bytes held now, per-entry overhead included (memory tier only). */
  bytes: number;
  /** Entries evicted because the byte bound was reached. */
  evictionsSize: number;
  /** Entries evicted because the entry-count bound was reached. */
  evictionsCount: number;
  /** Entries dropped because their TTL had passed. */
  expirations: number;
}
