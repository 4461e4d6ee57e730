/** Largest table width (counters per row); 2 bytes of table per unit. */
const MAX_WIDTH = 1 << 26;
/** Odd multipliers, one per row, for multiplicative hashing. */
const SEEDS = [0x9e3779b1, 0x85ebca6b, 0xc2b2ae35, 0x27d4eb2f] as const;

/** FNV-1a over UTF-16 code units: a fast 32-bit string hash. */
export function hashString(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A count-min sketch of 4 rows of 4-bit counters (saturating at 15), eight
 * counters per 32-bit word, estimating how often a key hash was seen.
 * After `10 × width` increments every counter is halved ("aging", as in
 * Caffeine's FrequencySketch), so the estimate favours recent popularity.
 * Width is a power of two ≥ the expected number of entries; memory is
 * 2 bytes per unit of width.
 */
export class CountMinSketch {
  #table = new Uint32Array(0);
  #width = 0;
  #shift = 32;
  #additions = 0;
  #sampleSize = 0;

  /** @param expectedEntries entries the sketch should distinguish (resized by ensureCapacity) */
  constructor(expectedEntries: number) {
    this.ensureCapacity(expectedEntries);
  }

  /** Counters per row. */
  get width(): number {
    return this.#width;
  }

  /** Increments the sketch will take before the next halving. */
  get sampleSize(): number {
    return this.#sampleSize;
  }

  /** Grow to suit `expectedEntries`; growing forgets all counts. */
  ensureCapacity(expectedEntries: number): void {
    let width = 16;
    const wanted = Math.min(Math.max(expectedEntries, 16), MAX_WIDTH);
    while (width < wanted) width *= 2;
    if (width <= this.#width) return;
    this.#width = width;
    this.#shift = 32 - Math.log2(width);
    this.#table = new Uint32Array((width * 4) / 8);
    this.#additions = 0;
    this.#sampleSize = 10 * width;
  }

  /** Estimated occurrences (0..15) of `hash`. */
  frequency(hash: number): number {
    let min = 15;
    for (let row = 0; row < 4; row++) {
      const pos = row * this.#width + this.#index(hash, row);
      const count = ((this.#table[pos >>> 3] as number) >>> ((pos & 7) << 2)) & 0xf;
      if (count < min) min = count;
    }
    return min;
  }

  /** Record one occurrence of `hash`; may trigger aging. */
  increment(hash: number): void {
    let added = false;
    for (let row = 0; row < 4; row++) {
      const pos = row * this.#width + this.#index(hash, row);
      const word = pos >>> 3;
      const shift = (pos & 7) << 2;
      const value = this.#table[word] as number;
      if (((value >>> shift) & 0xf) !== 0xf) {
        this.#table[word] = value + (1 << shift);
        added = true;
      }
    }
    if (added && ++this.#additions >= this.#sampleSize) this.#age();
  }

  /** Forget all counts. */
  clear(): void {
    this.#table.fill(0);
    this.#additions = 0;
  }

  /** Halve every counter. */
  #age(): void {
    const table = this.#table;
    for (let i = 0; i < table.length; i++) {
      table[i] = ((table[i] as number) >>> 1) & 0x77777777;
    }
    this.#additions >>>= 1;
  }

  #index(hash: number, row: number): number {
    return Math.imul(hash, SEEDS[row] as number) >>> this.#shift;
  }
}
