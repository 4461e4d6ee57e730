/** Names of the eviction policies a memory tier can use. */
export type EvictionPolicyName = "lru" | "fifo" | "lfu" | "tinylfu";

/** Sentinel for "no slot". */
export const NO_SLOT = -1;

/** Read access to the tier's per-slot data, for policies that need it. */
export interface SlotStore {
  /** Accounted bytes of the entry in `slot` (sizeOf + overhead). */
  sizeAt(slot: number): number;
  /** Key of the entry in `slot`. */
  keyAt(slot: number): string;
}

/**
 * The contract between the memory tier and an eviction policy.
 *
 * The tier owns keys, values, sizes and expiry, addressed by integer slots;
 * a policy only orders slots. Slots below `reservedSlots` are never handed
 * out by the tier (policies use them as list sentinels). All methods are
 * synchronous and must not call back into the tier.
 */
export interface EvictionPolicy {
  /** Policy name, as given in the tier's options. */
  readonly name: EvictionPolicyName;
  /** Number of low slot indexes the tier must leave unused. */
  readonly reservedSlots: number;
  /** Make per-slot state addressable for slots `< capacity` (only grows). */
  resize(capacity: number): void;
  /** A new entry was stored in `slot`. */
  onInsert(slot: number, key: string): void;
  /** A read hit on `slot` (get / getEntry). */
  onAccess(slot: number, key: string): void;
  /** The value in `slot` was overwritten; `oldSize` is its previous accounted size. */
  onReplace(slot: number, key: string, oldSize: number): void;
  /** `slot` is about to be freed (any cause); its size and key are still readable. */
  onRemove(slot: number): void;
  /**
   * The slot to evict next, or NO_SLOT if the policy holds nothing.
   * `pinned` is the slot written by the current set: LRU, FIFO and LFU never
   * return it while anything else is held; TinyLFU may (admission refused).
   */
  victim(pinned: number): number;
  /** Forget every slot (state as if freshly constructed, capacity kept). */
  clear(): void;
}
