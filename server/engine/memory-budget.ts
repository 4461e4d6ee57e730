/** A tier whose bytes count against a {@link MemoryBudget}, and that can give one entry back. */
export interface BudgetedTier {
  /** Accounted bytes held now. */
  readonly bytes: number;
  /** Evicts one entry by its own policy; the bytes freed, 0 when it has nothing to give. */
  evictOne(): number;
}

/** Where a {@link MemoryBudget} finds what it bounds. */
export interface BudgetSources {
  /** The tiers sharing the budget (the memory tier of every namespace). */
  tiers(): Iterable<BudgetedTier>;
  /** Bytes held outside the tiers that count too (namespace state, Watch history, leases). */
  fixedBytes(): number;
}

/** When the budget is exceeded, eviction goes down to this fraction of it, so that it runs once per few % of writes. */
const LOW_WATERMARK = 0.97;
/** The share of the budget entries keep even when what cannot be evicted takes the rest. */
const ENTRIES_FLOOR = 0.1;

/**
 * One bound on the bytes the server holds in memory, across every
 * namespace. Writes report what they add; once the running estimate passes
 * the bound, the budget counts exactly and, if it is really over, evicts
 * from the largest tier first (the namespace over its fair share gives
 * first, by its own policy) until it is back under the low watermark.
 * Reads are never refused.
 */
export class MemoryBudget {
  readonly maxBytes: number;
  readonly #sources: BudgetSources;
  #estimate = 0;
  #evictions = 0;

  constructor(maxBytes: number, sources: BudgetSources) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RangeError(`MemoryBudget: maxBytes must be a positive integer, got ${maxBytes}`);
    this.maxBytes = maxBytes;
    this.#sources = sources;
  }

  /** Entries evicted to respect the budget since start. */
  get evictions(): number {
    return this.#evictions;
  }

  /** Bytes counted now (exact; O(namespaces)). */
  get usedBytes(): number {
    let used = this.#sources.fixedBytes();
    for (const tier of this.#sources.tiers()) used += tier.bytes;
    return used;
  }

  /** Reports `bytes` just added somewhere the budget covers; evicts when the server is over its bound. */
  added(bytes: number): void {
    this.#estimate += bytes;
    if (this.#estimate > this.maxBytes) this.enforce();
  }

  /** Counts exactly and evicts, largest tier first, until under the low watermark if over the bound. */
  enforce(): void {
    const heap: BudgetedTier[] = [];
    let tierBytes = 0;
    for (const tier of this.#sources.tiers()) {
      tierBytes += tier.bytes;
      if (tier.bytes > 0) heap.push(tier);
    }
    let used = this.#sources.fixedBytes() + tierBytes;
    if (used > this.maxBytes) {
      // Entries keep at least a tenth of the budget whatever the rest takes: evicting them could not help then.
      const target = Math.max(Math.floor(this.maxBytes * LOW_WATERMARK), used - tierBytes + Math.floor(this.maxBytes * ENTRIES_FLOOR));
      heapify(heap);
      while (used > target && heap.length > 0) {
        const freed = heap[0]!.evictOne();
        if (freed === 0) {
          heap[0] = heap[heap.length - 1]!;
          heap.pop();
        } else {
          used -= freed;
          this.#evictions++;
        }
        siftDown(heap, 0);
      }
    }
    this.#estimate = used;
  }
}

function heapify(heap: BudgetedTier[]): void {
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(heap, i);
}

/** Restores the max-heap (by bytes) below `i`. */
function siftDown(heap: BudgetedTier[], i: number): void {
  const n = heap.length;
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let largest = i;
    if (left < n && heap[left]!.bytes > heap[largest]!.bytes) largest = left;
    if (right < n && heap[right]!.bytes > heap[largest]!.bytes) largest = right;
    if (largest === i) return;
    [heap[i], heap[largest]] = [heap[largest]!, heap[i]!];
    i = largest;
  }
}
