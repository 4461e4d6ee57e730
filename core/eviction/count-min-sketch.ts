import { mix32 } from "./hash.js";

/** 4-bit counters per expected entry (Caffeine uses 16; the doorkeeper in front keeps one-off keys out, so fewer do). */
export const SKETCH_COUNTERS_PER_ENTRY = 8;
/** Fewest counters a sketch has (8 KiB): a small cache sees many more distinct keys than it holds, and a smaller table saturates. */
export const SKETCH_MIN_COUNTERS = 16_384;
/** 32-bit words per block: 64 bytes, one cache line, 128 counters. */
const BLOCK_WORDS = 16;
/** Largest number of blocks (8 MiB of table). */
const MAX_BLOCKS = 1 << 17;

/**
 * A count-min sketch of 4-bit counters (saturating at 15), laid out as in
 * Caffeine's FrequencySketch: a key's four counters lie in one 64-byte
 * block, one counter in each quarter of it, so an estimate or increment
 * touches one cache line. `halve()` divides every counter by two (aging).
 * Memory: SKETCH_COUNTERS_PER_ENTRY / 2 bytes per expected entry, rounded up
 * to a power of two, and at least 8 KiB.
 */
export class CountMinSketch {
  #table = new Uint32Array(0);
  #blockShift = 32;

  /** @param expectedEntries entries the sketch should tell apart */
  constructor(expectedEntries: number) {
    this.ensureCapacity(expectedEntries);
  }

  /** Counters in the table. */
  get counters(): number {
    return this.#table.length * 8;
  }

  /** Grow to suit `expectedEntries`; growing forgets all counts. */
  ensureCapacity(expectedEntries: number): void {
    const counters = Math.max(expectedEntries * SKETCH_COUNTERS_PER_ENTRY, SKETCH_MIN_COUNTERS);
    const wanted = Math.min(Math.ceil(counters / 128), MAX_BLOCKS);
    let blocks = 1;
    while (blocks < wanted) blocks *= 2;
    if (blocks * BLOCK_WORDS <= this.#table.length) return;
    this.#table = new Uint32Array(blocks * BLOCK_WORDS);
    this.#blockShift = 32 - Math.log2(blocks);
  }

  /** Estimated occurrences (0..15) of `hash`. */
  frequency(hash: number): number {
    const h = mix32(hash);
    const block = this.#blockShift === 32 ? 0 : (h >>> this.#blockShift) * BLOCK_WORDS;
    const c = counterBits(h);
    return Math.min(
      this.#count(block, c),
      this.#count(block + 4, c >>> 8),
      this.#count(block + 8, c >>> 16),
      this.#count(block + 12, c >>> 24),
    );
  }

  /** Add one occurrence of `hash` to each of its counters below 15; false if all were saturated. */
  increment(hash: number): boolean {
    const h = mix32(hash);
    const block = this.#blockShift === 32 ? 0 : (h >>> this.#blockShift) * BLOCK_WORDS;
    const c = counterBits(h);
    const a = this.#incrementAt(block, c);
    const b = this.#incrementAt(block + 4, c >>> 8);
    const d = this.#incrementAt(block + 8, c >>> 16);
    const e = this.#incrementAt(block + 12, c >>> 24);
    return a || b || d || e;
  }

  /** The counter a row's byte `bits` picks among the 4 words from `row`. */
  #count(row: number, bits: number): number {
    return ((this.#table[row + (bits & 3)] as number) >>> (bits & 0x1c)) & 0xf;
  }

  /** Increment the counter a row's byte `bits` picks, unless saturated; whether it was. */
  #incrementAt(row: number, bits: number): boolean {
    const word = row + (bits & 3);
    const shift = bits & 0x1c;
    const value = this.#table[word] as number;
    if (((value >>> shift) & 0xf) === 0xf) return false;
    this.#table[word] = value + (1 << shift);
    return true;
  }

  /** Halve every counter; returns how many counters were odd (their halves were lost). */
  halve(): number {
    const table = this.#table;
    let odd = 0;
    for (let i = 0; i < table.length; i++) {
      const value = table[i] as number;
      odd += popcount(value & 0x11111111);
      table[i] = (value >>> 1) & 0x77777777;
    }
    return odd;
  }

  /** Forget all counts. */
  clear(): void {
    this.#table.fill(0);
  }
}

/** Four bytes choosing the counters: per row, 2 bits pick the word and 3 the nibble (pre-shifted by 2). */
function counterBits(h: number): number {
  return Math.imul(h ^ (h >>> 15), 0x31848bab) ^ (h >>> 7);
}

function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}
