import { FrequencySketch } from "./frequency-sketch.js";
import { hashString } from "./hash.js";
import { IndexLists } from "./index-lists.js";
import { NO_SLOT } from "./policy.js";

const WINDOW = 0;
const PROBATION = 1;
const PROTECTED = 2;

/** Share of the capacity the admission window starts with (Caffeine's 1%). */
export const INITIAL_WINDOW_SHARE = 0.01;
/** Smallest share of the capacity the window may be given (it also keeps at least one entry). */
export const MIN_WINDOW_SHARE = 0.001;
/** Share of the main space (capacity minus window) the protected segment starts with. */
export const PROTECTED_SHARE = 0.8;
/**
 * Largest share of the capacity the window may be given. Caffeine stops
 * where the protected segment is used up (about 80%); letting the window
 * take probation's share too brings a purely recency-driven workload to
 * within a fraction of a point of LRU instead of a few points below.
 */
export const MAX_WINDOW_SHARE = 0.99;
/** A candidate this frequent is admitted 1 time in 128 even when it loses (Caffeine's hash-flooding guard). */
const ADMIT_HASHDOS_THRESHOLD = 6;
/** Most victims weighed against one candidate; beyond, their frequency is extrapolated by size. */
const MAX_VICTIMS = 16;
/** Read hits buffered before they are applied (see WindowTinyLfu.access). */
const READ_BUFFER = 64;

/** Per-slot data a WindowTinyLfu reads from its owner. */
export interface TinyLfuSlots {
  /** Accounted size of the entry in `slot`. */
  sizeAt(slot: number): number;
}

/** Low bits of a slot's tag that hold its segment; the rest hold its key hash. */
const SEGMENT_BITS = 3;

/** The hash of `key` a WindowTinyLfu works with: FNV-1a with the two low bits (where it keeps the segment) cleared. */
export function tinyLfuHash(key: string): number {
  return (hashString(key) & ~SEGMENT_BITS) >>> 0;
}

/** Bounds the segments are sized against (Infinity = unbounded in that unit). */
export interface TinyLfuLimits {
  /** Most entries. */
  maxEntries: number;
  /** Most accounted bytes. */
  maxBytes: number;
}

/**
 * The Window TinyLFU structure of Caffeine over integer slots, with a
 * window share set from outside (see WindowClimber): new entries enter an
 * LRU admission window; entries leaving it become candidates for a
 * segmented-LRU main space (probation, then protected once read again).
 * When the owner must evict, a candidate is weighed against the victims
 * at the probation head (then the protected head) by a FrequencySketch;
 * the less frequent side is evicted.
 *
 * Size: segments are bounded in entries and in bytes. A candidate must
 * be more frequent than all the victims it needs to make room for itself
 * together ("aggregated victims"), so one large entry cannot evict many
 * small ones that are together more popular. An entry larger than the
 * window's byte share skips the window and goes straight to admission.
 *
 * Each slot's key hash is kept beside its list links (its two low bits
 * replaced by the slot's segment), so a read hit touches neither the key
 * string nor another cache line. Slots below 3 are list sentinels and
 * must not be used by the owner. Every operation is O(1) amortized
 * (moving the window share moves at most the entries the share change
 * covers). Memory: 12 bytes per slot, plus the FrequencySketch.
 */
export class WindowTinyLfu {
  /** Slots the owner must leave unused. */
  static readonly RESERVED_SLOTS = 3;
  readonly #lists: IndexLists;
  readonly #sketch: FrequencySketch;
  readonly #slots: TinyLfuSlots;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  /** Whether bytes are bounded (else sizes are never read). */
  readonly #byteBound: boolean;
  /** Entries and bytes per segment (WINDOW, PROBATION, PROTECTED). */
  readonly #counts = new Float64Array(3);
  readonly #bytes = new Float64Array(3);
  #windowShare = INITIAL_WINDOW_SHARE;
  #protectedShare = PROTECTED_SHARE * (1 - INITIAL_WINDOW_SHARE);
  #windowMaxCount = 0;
  #windowMaxBytes = 0;
  #protectedMaxCount = 0;
  #protectedMaxBytes = 0;
  /** Oldest candidate of the current write; candidates run from it to the probation tail. */
  #firstCandidate = NO_SLOT;
  /** Victims still to evict for a candidate that won admission. */
  #pendingVictims = 0;
  /** Read hits not applied yet, in order. */
  readonly #readSlots = new Uint32Array(READ_BUFFER);
  #reads = 0;
  /** Summed frequency of the victims counted by the last #victimsFor. */
  #victimsFrequency = 0;
  #random = 0x2545f491;

  /**
   * @param capacity initial slot capacity
   * @param limits bounds to size the segments against
   * @param slots the owner's per-slot sizes
   * @param expectedEntries entries the sketch should tell apart
   */
  constructor(capacity: number, limits: TinyLfuLimits, slots: TinyLfuSlots, expectedEntries: number) {
    this.#lists = new IndexLists(3, capacity, true);
    this.#slots = slots;
    this.#maxEntries = limits.maxEntries;
    this.#maxBytes = limits.maxBytes;
    this.#byteBound = Number.isFinite(limits.maxBytes);
    this.#sketch = new FrequencySketch(expectedEntries);
    this.#applyShares();
  }

  /** The window's share of the capacity. */
  get windowShare(): number {
    return this.#windowShare;
  }

  /**
   * Move the window's share to `share` (clamped to MIN_WINDOW_SHARE ..
   * MAX_WINDOW_SHARE). Growing takes the protected segment's share first,
   * then probation's, and pulls main entries (least recent first) into
   * the window; shrinking gives the protected segment back up to 80% of
   * the main space and moves the window's oldest entries to probation,
   * without an admission contest.
   */
  set windowShare(share: number) {
    this.#applyReads();
    const amount = share - this.#windowShare;
    if (amount > 0) this.#growWindow(Math.min(amount, MAX_WINDOW_SHARE - this.#windowShare));
    else if (amount < 0) this.#shrinkWindow(Math.min(-amount, this.#windowShare - MIN_WINDOW_SHARE));
  }

  /** Entries held. */
  get size(): number {
    return (this.#counts[WINDOW] as number) + (this.#counts[PROBATION] as number) + (this.#counts[PROTECTED] as number);
  }

  /** Make per-slot state addressable for slots `< capacity` (only grows). */
  resize(capacity: number): void {
    this.#lists.resize(capacity);
  }

  /** The tinyLfuHash of the key in `slot`. */
  hashAt(slot: number): number {
    return (this.#lists.tag(slot) & ~SEGMENT_BITS) >>> 0;
  }

  /** Grow the sketch for a cache bounded by bytes only (forgets frequencies). */
  expectEntries(entries: number): void {
    this.#applyReads();
    this.#sketch.ensureCapacity(entries);
  }

  /** A new entry was stored in `slot`; `hash` is its key's tinyLfuHash. */
  insert(slot: number, hash: number): void {
    this.#applyReads();
    this.#beginWrite();
    this.#sketch.increment(hash);
    this.#lists.append(WINDOW, slot);
    this.#lists.setTag(slot, hash | WINDOW);
    this.#account(WINDOW, 1, this.#sizeAt(slot));
    this.#spillWindow();
  }

  /**
   * A read hit on `slot`. Like Caffeine's read buffer, hits are queued and
   * applied in order, in batches of 64 or before any other operation, so
   * every decision sees exactly the state it would have seen unbatched;
   * a batch's sketch lookups can overlap their cache misses.
   */
  access(slot: number): void {
    const reads = this.#reads;
    this.#readSlots[reads] = slot;
    this.#reads = reads + 1;
    if (reads + 1 === READ_BUFFER) this.#applyReads();
  }

  /** The entry in `slot` was overwritten; `oldSize` was its accounted size. */
  replace(slot: number, oldSize: number): void {
    this.#applyReads();
    this.#beginWrite();
    if (this.#byteBound) this.#account(this.#segmentOf(slot), 0, this.#sizeAt(slot) - oldSize);
    this.#sketch.increment(this.hashAt(slot));
    this.#touch(slot);
    this.#spillWindow();
  }

  /** `slot` is about to be freed; its size is still readable. */
  remove(slot: number): void {
    this.#applyReads();
    if (slot === this.#firstCandidate) this.#advanceCandidate();
    this.#account(this.#segmentOf(slot), -1, -this.#sizeAt(slot));
    this.#lists.unlink(slot);
  }

  /**
   * The slot to evict next, or NO_SLOT when nothing is held. A candidate
   * that loses admission is returned itself; that can be the entry just
   * written.
   */
  victim(): number {
    this.#applyReads();
    const victim = this.#firstVictim();
    if (this.#pendingVictims > 0) {
      this.#pendingVictims--;
      if (victim !== NO_SLOT) return victim;
    }
    const candidate = this.#firstCandidate;
    if (candidate === NO_SLOT) {
      if (victim !== NO_SLOT) return victim;
      const head = this.#lists.head(WINDOW);
      return head === WINDOW ? NO_SLOT : head;
    }
    if (victim === NO_SLOT) return candidate;
    const candidateFreq = this.#sketch.frequency(this.hashAt(candidate));
    // A candidate seen once (or not since the last aging) can outweigh nothing: no need to weigh victims.
    if (candidateFreq === 0) return candidate;
    const victims = this.#victimsFor(candidate, victim);
    if (!this.#admit(candidateFreq, this.#victimsFrequency)) return candidate;
    this.#advanceCandidate();
    this.#pendingVictims = victims - 1;
    return victim;
  }

  /** Forget every slot and all frequencies; the window share is kept. */
  clear(): void {
    this.#reads = 0;
    this.#lists.reset();
    this.#sketch.clear();
    this.#counts.fill(0);
    this.#bytes.fill(0);
    this.#firstCandidate = NO_SLOT;
    this.#pendingVictims = 0;
  }

  /** Apply the queued read hits: all their sketch increments, then their recency updates. */
  #applyReads(): void {
    const reads = this.#reads;
    if (reads === 0) return;
    this.#reads = 0;
    const slots = this.#readSlots;
    for (let i = 0; i < reads; i++) this.#sketch.incrementHeld(this.hashAt(slots[i] as number));
    for (let i = 0; i < reads; i++) this.#touch(slots[i] as number);
  }

  /** A write starts a new eviction round: earlier candidates become plain probation entries. */
  #beginWrite(): void {
    this.#firstCandidate = NO_SLOT;
    this.#pendingVictims = 0;
  }

  /**
   * How many victims, from `first` on, must go to make room for
   * `candidate` (what the owner lacks, at most the candidate's own entry and
   * bytes); sets #victimsFrequency to their summed frequency, extrapolated
   * by size when more than MAX_VICTIMS would be needed.
   */
  #victimsFor(candidate: number, first: number): number {
    const needCount = this.size > this.#maxEntries ? 1 : 0;
    const excessBytes = (this.#bytes[WINDOW] as number) + (this.#bytes[PROBATION] as number) + (this.#bytes[PROTECTED] as number) - this.#maxBytes;
    const needBytes = Math.min(this.#sizeAt(candidate), excessBytes);
    let freedBytes = 0;
    let frequency = 0;
    let victims = 0;
    for (let slot = first; slot !== NO_SLOT; slot = this.#nextVictim(slot)) {
      freedBytes += this.#sizeAt(slot);
      frequency += this.#sketch.frequency(this.hashAt(slot));
      victims++;
      if (victims >= needCount && freedBytes >= needBytes) break;
      if (victims === MAX_VICTIMS) {
        if (freedBytes > 0) frequency *= needBytes / freedBytes;
        break;
      }
    }
    this.#victimsFrequency = frequency;
    return victims;
  }

  /** The next eviction victim: the probation head (if not a candidate), else the protected head; NO_SLOT if neither. */
  #firstVictim(): number {
    const head = this.#lists.head(PROBATION);
    if (head !== PROBATION && head !== this.#firstCandidate) return head;
    const protectedHead = this.#lists.head(PROTECTED);
    return protectedHead === PROTECTED ? NO_SLOT : protectedHead;
  }

  /** The victim after `slot` in eviction order. */
  #nextVictim(slot: number): number {
    const next = this.#lists.next(slot);
    if (this.#segmentOf(slot) === PROBATION) {
      if (next !== PROBATION && next !== this.#firstCandidate) return next;
      const protectedHead = this.#lists.head(PROTECTED);
      return protectedHead === PROTECTED ? NO_SLOT : protectedHead;
    }
    return next === PROTECTED ? NO_SLOT : next;
  }

  /** Recency update on a hit or overwrite, promoting probation entries. */
  #touch(slot: number): void {
    const segment = this.#segmentOf(slot);
    if (segment === WINDOW) {
      this.#lists.moveToTail(WINDOW, slot);
    } else if (segment === PROTECTED) {
      this.#lists.moveToTail(PROTECTED, slot);
    } else {
      if (slot === this.#firstCandidate) this.#advanceCandidate();
      this.#move(slot, PROBATION, PROTECTED);
      this.#demoteProtectedOverflow(slot);
    }
  }

  /** Move linked `slot` from segment `from` to the tail of `to`. */
  #move(slot: number, from: number, to: number): void {
    const size = this.#sizeAt(slot);
    this.#lists.unlink(slot);
    this.#lists.append(to, slot);
    this.#lists.setTag(slot, (this.#lists.tag(slot) & ~SEGMENT_BITS) | to);
    this.#account(from, -1, -size);
    this.#account(to, 1, size);
  }

  #segmentOf(slot: number): number {
    return this.#lists.tag(slot) & SEGMENT_BITS;
  }

  /** The accounted size of `slot`, or 0 when bytes are not bounded (then no byte total is ever compared). */
  #sizeAt(slot: number): number {
    return this.#byteBound ? this.#slots.sizeAt(slot) : 0;
  }

  /** Add `entries` and `bytes` to `segment`'s totals. */
  #account(segment: number, entries: number, bytes: number): void {
    this.#counts[segment] = (this.#counts[segment] as number) + entries;
    this.#bytes[segment] = (this.#bytes[segment] as number) + bytes;
  }

  #windowOverflows(): boolean {
    return (this.#counts[WINDOW] as number) > this.#windowMaxCount || (this.#bytes[WINDOW] as number) > this.#windowMaxBytes;
  }

  /** Move protected heads to probation until the protected segment fits its share (sparing `keep`). */
  #demoteProtectedOverflow(keep: number): void {
    while ((this.#counts[PROTECTED] as number) > this.#protectedMaxCount || (this.#bytes[PROTECTED] as number) > this.#protectedMaxBytes) {
      const head = this.#lists.head(PROTECTED);
      if (head === PROTECTED || head === keep) return;
      this.#move(head, PROTECTED, PROBATION);
    }
  }

  /** Window overflow moves to probation as this write's candidates. */
  #spillWindow(): void {
    while (this.#windowOverflows()) {
      const head = this.#lists.head(WINDOW);
      if (head === WINDOW) return;
      this.#move(head, WINDOW, PROBATION);
      if (this.#firstCandidate === NO_SLOT) this.#firstCandidate = head;
    }
  }

  #advanceCandidate(): void {
    const next = this.#lists.next(this.#firstCandidate);
    this.#firstCandidate = next === PROBATION ? NO_SLOT : next;
  }

  #growWindow(amount: number): void {
    if (amount <= 0) return;
    this.#beginWrite();
    this.#windowShare += amount;
    this.#protectedShare = Math.max(0, this.#protectedShare - amount);
    this.#applyShares();
    this.#demoteProtectedOverflow(NO_SLOT);
    const lists = this.#lists;
    for (;;) {
      let slot = lists.head(PROBATION);
      let from = PROBATION;
      if (slot === PROBATION) {
        slot = lists.head(PROTECTED);
        from = PROTECTED;
        if (slot === PROTECTED) return;
      }
      if ((this.#counts[WINDOW] as number) >= this.#windowMaxCount) return;
      if ((this.#bytes[WINDOW] as number) + this.#sizeAt(slot) > this.#windowMaxBytes) return;
      this.#move(slot, from, WINDOW);
    }
  }

  #shrinkWindow(amount: number): void {
    if (amount <= 0) return;
    this.#beginWrite();
    this.#windowShare -= amount;
    this.#protectedShare = Math.min(this.#protectedShare + amount, PROTECTED_SHARE * (1 - this.#windowShare));
    this.#applyShares();
    while (this.#windowOverflows()) {
      const head = this.#lists.head(WINDOW);
      if (head === WINDOW) return;
      this.#move(head, WINDOW, PROBATION);
    }
  }

  /** Derive the segments' entry and byte limits from their shares. */
  #applyShares(): void {
    const maxEntries = this.#maxEntries;
    const maxBytes = this.#maxBytes;
    const countBound = Number.isFinite(maxEntries);
    const byteBound = Number.isFinite(maxBytes);
    this.#windowMaxCount = countBound ? Math.max(1, Math.floor(this.#windowShare * maxEntries)) : Infinity;
    this.#protectedMaxCount = countBound ? Math.floor(this.#protectedShare * maxEntries) : Infinity;
    this.#windowMaxBytes = byteBound ? this.#windowShare * maxBytes : Infinity;
    this.#protectedMaxBytes = byteBound ? this.#protectedShare * maxBytes : Infinity;
  }

  /** Whether a candidate of `candidateFreq` should replace victims of summed `victimsFreq`. */
  #admit(candidateFreq: number, victimsFreq: number): boolean {
    if (candidateFreq > victimsFreq) return true;
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
