import { CountMinSketch, hashString } from "./count-min-sketch.js";
import { IndexLists } from "./index-lists.js";
import { NO_SLOT, type EvictionPolicy, type SlotStore } from "./policy.js";

const WINDOW = 0;
const PROBATION = 1;
const PROTECTED = 2;

/** Share of the capacity given to the admission window (Caffeine's initial 1%). */
export const TINYLFU_WINDOW_SHARE = 0.01;
/** Share of the main space given to the protected segment. */
export const TINYLFU_PROTECTED_SHARE = 0.8;
/** A candidate this frequent is admitted 1 time in 128 even when it loses (Caffeine's hash-flooding guard). */
const ADMIT_HASHDOS_THRESHOLD = 6;

/** Limits the policy sizes its segments against (Infinity = unbounded in that unit). */
export interface TinyLfuLimits {
  /** The tier's entry bound. */
  maxEntries: number;
  /** The tier's byte bound. */
  maxBytes: number;
}

/**
 * Window TinyLFU, after Caffeine: new entries enter a small LRU window
 * (1% of the capacity, at least one entry); entries leaving the window
 * become candidates for a segmented-LRU main space (probation, then
 * protected = 80% of main once read again). When the tier must evict, the
 * oldest candidate is compared with the probation head (or the protected
 * head if probation holds only candidates) by a count-min frequency sketch
 * that ages by halving; the less frequent loses. The candidate can be the
 * entry being written, in which case the write is refused.
 *
 * Segments are sized in both entries and bytes (each against the tier's
 * bound of that unit), so an entry larger than 1% of maxBytes skips the
 * window and must win admission at once. The window size is fixed (no
 * hill climbing).
 * Every operation is O(1) plus hashing the key (FNV-1a, O(key length))
 * on each read hit, write and admission contest, and the sketch's
 * amortized O(1) aging; reads and writes feed the sketch. Memory: 9 bytes
 * per slot plus the sketch (2 bytes per expected entry, rounded up to a
 * power of two).
 */
export class TinyLfuPolicy implements EvictionPolicy {
  /** @inheritdoc */
  readonly name = "tinylfu";
  /** @inheritdoc */
  readonly reservedSlots = 3;
  readonly #lists: IndexLists;
  readonly #sketch: CountMinSketch;
  readonly #store: SlotStore;
  readonly #boundedByCount: boolean;
  #segment: Uint8Array;
  readonly #windowMaxCount: number;
  readonly #windowMaxBytes: number;
  readonly #protectedMaxCount: number;
  readonly #protectedMaxBytes: number;
  #windowCount = 0;
  #windowBytes = 0;
  #protectedCount = 0;
  #protectedBytes = 0;
  /** Oldest entry moved from the window by the current write; candidates run from it to the probation tail. */
  #firstCandidate = NO_SLOT;
  #random = 0x2545f491;

  /**
   * @param capacity initial slot capacity
   * @param limits the tier's bounds
   * @param store the tier's per-slot sizes and keys
   */
  constructor(capacity: number, limits: TinyLfuLimits, store: SlotStore) {
    this.#lists = new IndexLists(3, capacity);
    this.#segment = new Uint8Array(capacity);
    this.#store = store;
    const { maxEntries, maxBytes } = limits;
    this.#boundedByCount = Number.isFinite(maxEntries);
    if (this.#boundedByCount) {
      this.#windowMaxCount = Math.max(1, Math.floor(maxEntries * TINYLFU_WINDOW_SHARE));
      this.#protectedMaxCount = Math.floor((maxEntries - this.#windowMaxCount) * TINYLFU_PROTECTED_SHARE);
    } else {
      this.#windowMaxCount = Infinity;
      this.#protectedMaxCount = Infinity;
    }
    if (Number.isFinite(maxBytes)) {
      this.#windowMaxBytes = maxBytes * TINYLFU_WINDOW_SHARE;
      this.#protectedMaxBytes = (maxBytes - this.#windowMaxBytes) * TINYLFU_PROTECTED_SHARE;
    } else {
      this.#windowMaxBytes = Infinity;
      this.#protectedMaxBytes = Infinity;
    }
    this.#sketch = new CountMinSketch(this.#boundedByCount ? maxEntries : capacity);
  }

  /** The frequency sketch (exposed for tests and diagnostics). */
  get sketch(): CountMinSketch {
    return this.#sketch;
  }

  /** @inheritdoc */
  resize(capacity: number): void {
    if (capacity <= this.#segment.length) return;
    this.#lists.resize(capacity);
    const segment = new Uint8Array(capacity);
    segment.set(this.#segment);
    this.#segment = segment;
    if (!this.#boundedByCount) this.#sketch.ensureCapacity(capacity);
  }

  /** @inheritdoc */
  onInsert(slot: number, key: string): void {
    this.#sketch.increment(hashString(key));
    this.#segment[slot] = WINDOW;
    this.#lists.append(WINDOW, slot);
    this.#windowCount++;
    this.#windowBytes += this.#store.sizeAt(slot);
    this.#beginRound();
  }

  /** @inheritdoc */
  onAccess(slot: number, key: string): void {
    this.#sketch.increment(hashString(key));
    this.#touch(slot);
  }

  /** @inheritdoc */
  onReplace(slot: number, key: string, oldSize: number): void {
    const delta = this.#store.sizeAt(slot) - oldSize;
    const segment = this.#segment[slot];
    if (segment === WINDOW) this.#windowBytes += delta;
    else if (segment === PROTECTED) this.#protectedBytes += delta;
    this.#sketch.increment(hashString(key));
    this.#touch(slot);
    this.#beginRound();
  }

  /** @inheritdoc */
  onRemove(slot: number): void {
    if (slot === this.#firstCandidate) this.#advanceCandidate();
    const size = this.#store.sizeAt(slot);
    const segment = this.#segment[slot];
    if (segment === WINDOW) {
      this.#windowCount--;
      this.#windowBytes -= size;
    } else if (segment === PROTECTED) {
      this.#protectedCount--;
      this.#protectedBytes -= size;
    }
    this.#lists.unlink(slot);
  }

  /** @inheritdoc */
  victim(): number {
    const lists = this.#lists;
    let candidate = this.#firstCandidate;
    if (candidate === NO_SLOT) {
      candidate = lists.head(WINDOW);
      if (candidate === WINDOW) candidate = NO_SLOT;
    }
    let victim = lists.head(PROBATION);
    if (victim === PROBATION || victim === this.#firstCandidate) {
      victim = lists.head(PROTECTED);
      if (victim === PROTECTED) victim = NO_SLOT;
    }
    if (victim === NO_SLOT) return candidate;
    if (candidate === NO_SLOT) return victim;
    return this.#admit(candidate, victim) ? victim : candidate;
  }

  /** @inheritdoc */
  clear(): void {
    this.#lists.reset();
    this.#sketch.clear();
    this.#windowCount = 0;
    this.#windowBytes = 0;
    this.#protectedCount = 0;
    this.#protectedBytes = 0;
    this.#firstCandidate = NO_SLOT;
  }

  /** Recency update on a hit or overwrite, promoting probation entries. */
  #touch(slot: number): void {
    const lists = this.#lists;
    const segment = this.#segment[slot];
    if (segment === WINDOW) {
      lists.moveToTail(WINDOW, slot);
    } else if (segment === PROTECTED) {
      lists.moveToTail(PROTECTED, slot);
    } else {
      if (slot === this.#firstCandidate) this.#advanceCandidate();
      lists.unlink(slot);
      lists.append(PROTECTED, slot);
      this.#segment[slot] = PROTECTED;
      this.#protectedCount++;
      this.#protectedBytes += this.#store.sizeAt(slot);
      this.#demoteProtectedOverflow(slot);
    }
  }

  /** Move protected heads to probation until the protected segment fits its share (sparing `keep`). */
  #demoteProtectedOverflow(keep: number): void {
    const lists = this.#lists;
    while (this.#protectedCount > this.#protectedMaxCount || this.#protectedBytes > this.#protectedMaxBytes) {
      const head = lists.head(PROTECTED);
      if (head === PROTECTED || head === keep) return;
      lists.unlink(head);
      lists.append(PROBATION, head);
      this.#segment[head] = PROBATION;
      this.#protectedCount--;
      this.#protectedBytes -= this.#store.sizeAt(head);
    }
  }

  /** Start an eviction round: window overflow moves to probation as candidates. */
  #beginRound(): void {
    this.#firstCandidate = NO_SLOT;
    const lists = this.#lists;
    while (this.#windowCount > this.#windowMaxCount || this.#windowBytes > this.#windowMaxBytes) {
      const head = lists.head(WINDOW);
      if (head === WINDOW) return;
      lists.unlink(head);
      lists.append(PROBATION, head);
      this.#segment[head] = PROBATION;
      this.#windowCount--;
      this.#windowBytes -= this.#store.sizeAt(head);
      if (this.#firstCandidate === NO_SLOT) this.#firstCandidate = head;
    }
  }

  #advanceCandidate(): void {
    const next = this.#lists.next[this.#firstCandidate] as number;
    this.#firstCandidate = next === PROBATION ? NO_SLOT : next;
  }

  /** Whether `candidate` should replace `victim` in the main space. */
  #admit(candidate: number, victim: number): boolean {
    const candidateFreq = this.#sketch.frequency(hashString(this.#store.keyAt(candidate)));
    const victimFreq = this.#sketch.frequency(hashString(this.#store.keyAt(victim)));
    if (candidateFreq > victimFreq) return true;
    if (candidateFreq < ADMIT_HASHDOS_THRESHOLD) return false;
    // xorshift32: deterministic, so runs are reproducible.
    let x = this.#random;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#random = x;
    return (x & 127) === 0;
  }
}
