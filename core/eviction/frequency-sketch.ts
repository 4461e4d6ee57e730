import { CountMinSketch } from "./count-min-sketch.js";
import { Doorkeeper } from "./doorkeeper.js";

/** Additions per expected entry between two agings (TinyLFU's sample size W, as in Caffeine). */
export const SAMPLE_SIZE_PER_ENTRY = 10;

/**
 * TinyLFU's frequency estimate of a key hash: a doorkeeper Bloom filter
 * in front of a count-min sketch of 4-bit counters. A key's first
 * occurrence in an aging period only enters the doorkeeper; later ones
 * count in the sketch, and the estimate is the sketch's count (0..15), so
 * keys seen once never occupy counters and all estimate 0. (The TinyLFU
 * paper adds one when the doorkeeper holds the key; leaving it out shifts
 * every seen key alike, saves a second cache line per estimate, and
 * scored 0.5 points better on average over the real traces.) Every
 * `sampleSize` additions the sketch halves its counters and the
 * doorkeeper forgets, so popularity fades unless renewed (the "reset" of
 * the TinyLFU paper).
 *
 * Requests for keys the cache holds (read hits) skip the doorkeeper
 * (`incrementHeld`): such a key already passed it when it was stored, so
 * the filter would only cost a second cache line per hit.
 */
export class FrequencySketch {
  readonly #sketch: CountMinSketch;
  readonly #doorkeeper: Doorkeeper;
  #sampleSize = 0;
  #additions = 0;

  /** @param expectedEntries entries the cache holds (sizes the tables and the aging period) */
  constructor(expectedEntries: number) {
    this.#sketch = new CountMinSketch(expectedEntries);
    this.#doorkeeper = new Doorkeeper(expectedEntries);
    this.#sampleSize = SAMPLE_SIZE_PER_ENTRY * Math.max(expectedEntries, 1);
  }

  /** Additions between two agings. */
  get sampleSize(): number {
    return this.#sampleSize;
  }

  /** Grow to suit `expectedEntries` (for a cache bounded by bytes only); growing forgets all counts. */
  ensureCapacity(expectedEntries: number): void {
    const sampleSize = SAMPLE_SIZE_PER_ENTRY * Math.max(expectedEntries, 1);
    if (sampleSize <= this.#sampleSize) return;
    this.#sampleSize = sampleSize;
    this.#sketch.ensureCapacity(expectedEntries);
    this.#doorkeeper.ensureCapacity(expectedEntries);
  }

  /** Estimated occurrences of `hash` in the recent past, not counting the first (0..15). */
  frequency(hash: number): number {
    return this.#sketch.frequency(hash);
  }

  /** Record one occurrence of `hash`; may age the whole sketch. */
  increment(hash: number): void {
    if (this.#doorkeeper.add(hash) && !this.#sketch.increment(hash)) return;
    if (++this.#additions >= this.#sampleSize) this.#age();
  }

  /** Record one occurrence of `hash`, a key the cache holds: straight into the sketch. */
  incrementHeld(hash: number): void {
    if (this.#sketch.increment(hash) && ++this.#additions >= this.#sampleSize) this.#age();
  }

  /** Forget all counts. */
  clear(): void {
    this.#sketch.clear();
    this.#doorkeeper.clear();
    this.#additions = 0;
  }

  #age(): void {
    this.#sketch.halve();
    this.#doorkeeper.clear();
    this.#additions >>>= 1;
  }
}
