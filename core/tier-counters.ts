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
  /** Entries held now by the memory tier; 0 for a durable tier means "not reported" (counting one namespace there takes a scan). */
  entries: number;
  /** Bytes held now by the memory tier, per-entry overhead included; 0 for a durable tier means "not reported". */
  bytes: number;
  /** Entries evicted because the byte bound was reached. */
  evictionsSize: number;
  /** Entries evicted because the entry-count bound was reached. */
  evictionsCount: number;
  /** Entries dropped because their TTL had passed. */
  expirations: number;
}
