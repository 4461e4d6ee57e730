import { NO_SLOT, type EvictionPolicy } from "./policy.js";

const NO_BUCKET = -1;
const INITIAL_BUCKETS = 16;

/** Frequencies are halved after this many uses (inserts, read hits, overwrites) per entry held. */
export const LFU_AGING_USES_PER_ENTRY = 5;
/** Entries assumed held when fewer are, so that a nearly empty tier does not age on every use. */
export const LFU_AGING_MIN_ENTRIES = 16;

/**
 * Least frequently used with aging: the classic O(1) LFU (Shah, Mitra &
 * Matani 2010), a list of frequency buckets in ascending order, each
 * holding its slots in the order they reached that frequency. An insert
 * starts at frequency 1; a read hit or an overwrite adds 1 and moves the
 * slot to the tail of the next bucket. The victim is the head of the
 * lowest bucket: the least recently used among the least frequent.
 *
 * Aging, so that old popularity fades: after LFU_AGING_USES_PER_ENTRY uses
 * per entry held (at least LFU_AGING_MIN_ENTRIES), every frequency is
 * halved, rounding down (1 becomes 0, below any new entry). Buckets that
 * meet merge, the lower former frequency first, each keeping its order.
 *
 * Every operation is O(1), aging O(entries) once per 10 uses per entry
 * (amortized O(1)). Frequencies are forgotten when an entry leaves the
 * tier. Memory: 12 bytes per slot, plus 24 bytes per distinct frequency
 * in use.
 */
export class LfuPolicy implements EvictionPolicy {
  /** @inheritdoc */
  readonly name = "lfu";
  /** @inheritdoc */
  readonly reservedSlots = 0;
  // Per slot: list links within its bucket, and its bucket.
  #next: Int32Array;
  #prev: Int32Array;
  #bucketOf: Uint32Array;
  // Per bucket (an index into these arrays).
  #freq = new Float64Array(INITIAL_BUCKETS);
  #head = new Int32Array(INITIAL_BUCKETS);
  #tail = new Int32Array(INITIAL_BUCKETS);
  #below = new Int32Array(INITIAL_BUCKETS);
  #above = new Int32Array(INITIAL_BUCKETS);
  #freeBuckets: number[] = [];
  #bucketsUsed = 0;
  /** The lowest-frequency bucket. */
  #first = NO_BUCKET;
  /** Slots held. */
  #held = 0;
  /** Uses since the last halving. */
  #uses = 0;

  /** @param capacity initial slot capacity */
  constructor(capacity: number) {
    this.#next = new Int32Array(capacity);
    this.#prev = new Int32Array(capacity);
    this.#bucketOf = new Uint32Array(capacity);
  }

  /** @inheritdoc */
  resize(capacity: number): void {
    if (capacity <= this.#next.length) return;
    this.#next = grown(this.#next, new Int32Array(capacity));
    this.#prev = grown(this.#prev, new Int32Array(capacity));
    this.#bucketOf = grown(this.#bucketOf, new Uint32Array(capacity));
  }

  /** @inheritdoc */
  onInsert(slot: number): void {
    let below = NO_BUCKET;
    let bucket = this.#first;
    if (bucket !== NO_BUCKET && this.#freq[bucket] === 0) {
      below = bucket;
      bucket = this.#above[bucket] as number;
    }
    if (bucket === NO_BUCKET || this.#freq[bucket] !== 1) {
      bucket = this.#newBucket(1, below, bucket);
    }
    this.#push(bucket, slot);
    this.#held++;
    this.#use();
  }

  /** @inheritdoc */
  onAccess(slot: number): void {
    this.#bump(slot);
    this.#use();
  }

  /** An overwrite counts as a use. */
  onReplace(slot: number): void {
    this.#bump(slot);
    this.#use();
  }

  /** @inheritdoc */
  onRemove(slot: number): void {
    const bucket = this.#bucketOf[slot] as number;
    this.#unlink(bucket, slot);
    if (this.#head[bucket] === NO_SLOT) this.#dropBucket(bucket);
    this.#held--;
  }

  /** @inheritdoc */
  victim(pinned: number): number {
    const bucket = this.#first;
    if (bucket === NO_BUCKET) return NO_SLOT;
    let slot = this.#head[bucket] as number;
    if (slot === pinned) {
      slot = this.#next[slot] as number;
      if (slot === NO_SLOT) {
        const above = this.#above[bucket] as number;
        slot = above === NO_BUCKET ? NO_SLOT : (this.#head[above] as number);
      }
    }
    return slot;
  }

  /** @inheritdoc */
  clear(): void {
    this.#first = NO_BUCKET;
    this.#freeBuckets = [];
    this.#bucketsUsed = 0;
    this.#held = 0;
    this.#uses = 0;
  }

  /** Count a use; halve every frequency once enough have accumulated. */
  #use(): void {
    if (++this.#uses < LFU_AGING_USES_PER_ENTRY * Math.max(this.#held, LFU_AGING_MIN_ENTRIES)) return;
    this.#uses = 0;
    this.#halve();
  }

  /** Halve every frequency (rounding down), merging buckets that meet; lower former frequency first. */
  #halve(): void {
    let bucket = this.#first;
    let previous = NO_BUCKET;
    while (bucket !== NO_BUCKET) {
      const above = this.#above[bucket] as number;
      const freq = Math.floor((this.#freq[bucket] as number) / 2);
      if (previous !== NO_BUCKET && this.#freq[previous] === freq) {
        this.#mergeInto(previous, bucket);
      } else {
        this.#freq[bucket] = freq;
        previous = bucket;
      }
      bucket = above;
    }
  }

  /** Append `from`'s slots to `into` (its neighbour below), then drop `from`. */
  #mergeInto(into: number, from: number): void {
    for (let slot = this.#head[from] as number; slot !== NO_SLOT; slot = this.#next[slot] as number) {
      this.#bucketOf[slot] = into;
    }
    const head = this.#head[from] as number;
    const tail = this.#tail[into] as number;
    this.#next[tail] = head;
    this.#prev[head] = tail;
    this.#tail[into] = this.#tail[from] as number;
    this.#dropBucket(from);
  }

  #bump(slot: number): void {
    const bucket = this.#bucketOf[slot] as number;
    const freq = (this.#freq[bucket] as number) + 1;
    let target = this.#above[bucket] as number;
    if (target === NO_BUCKET || this.#freq[target] !== freq) {
      if (this.#head[bucket] === slot && this.#tail[bucket] === slot) {
        // Sole member: the bucket itself moves up a frequency.
        this.#freq[bucket] = freq;
        return;
      }
      target = this.#newBucket(freq, bucket, target);
    }
    this.#unlink(bucket, slot);
    if (this.#head[bucket] === NO_SLOT) this.#dropBucket(bucket);
    this.#push(target, slot);
  }

  #push(bucket: number, slot: number): void {
    const tail = this.#tail[bucket] as number;
    this.#prev[slot] = tail;
    this.#next[slot] = NO_SLOT;
    if (tail === NO_SLOT) this.#head[bucket] = slot;
    else this.#next[tail] = slot;
    this.#tail[bucket] = slot;
    this.#bucketOf[slot] = bucket;
  }

  #unlink(bucket: number, slot: number): void {
    const p = this.#prev[slot] as number;
    const n = this.#next[slot] as number;
    if (p === NO_SLOT) this.#head[bucket] = n;
    else this.#next[p] = n;
    if (n === NO_SLOT) this.#tail[bucket] = p;
    else this.#prev[n] = p;
  }

  /** An empty bucket of `freq`, linked between `below` and `above`. */
  #newBucket(freq: number, below: number, above: number): number {
    let bucket = this.#freeBuckets.pop();
    if (bucket === undefined) {
      bucket = this.#bucketsUsed++;
      if (bucket === this.#freq.length) this.#growBuckets(bucket * 2);
    }
    this.#freq[bucket] = freq;
    this.#head[bucket] = NO_SLOT;
    this.#tail[bucket] = NO_SLOT;
    this.#below[bucket] = below;
    this.#above[bucket] = above;
    if (below === NO_BUCKET) this.#first = bucket;
    else this.#above[below] = bucket;
    if (above !== NO_BUCKET) this.#below[above] = bucket;
    return bucket;
  }

  #dropBucket(bucket: number): void {
    const below = this.#below[bucket] as number;
    const above = this.#above[bucket] as number;
    if (below === NO_BUCKET) this.#first = above;
    else this.#above[below] = above;
    if (above !== NO_BUCKET) this.#below[above] = below;
    this.#freeBuckets.push(bucket);
  }

  #growBuckets(capacity: number): void {
    this.#freq = grown(this.#freq, new Float64Array(capacity));
    this.#head = grown(this.#head, new Int32Array(capacity));
    this.#tail = grown(this.#tail, new Int32Array(capacity));
    this.#below = grown(this.#below, new Int32Array(capacity));
    this.#above = grown(this.#above, new Int32Array(capacity));
  }
}

/** `into`, holding a copy of `from` at its start. */
function grown<T extends Int32Array | Uint32Array | Float64Array>(from: T, into: T): T {
  into.set(from);
  return into;
}
