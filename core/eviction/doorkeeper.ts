import { mix32 } from "./hash.js";

/** Bits of filter per expected entry. */
export const DOORKEEPER_BITS_PER_ENTRY = 4;
/** The filter forgets everything once it holds one key per this many of its bits (then about one key in seven is a false positive). */
const BITS_PER_KEY = 4;
/** Fewest bits a filter has (2 KiB), for the same reason as SKETCH_MIN_COUNTERS. */
export const DOORKEEPER_MIN_BITS = 16_384;
/** Largest filter: 2^27 bits (16 MiB). */
const MAX_WORDS = 1 << 22;

/**
 * The doorkeeper of TinyLFU (Einziger, Friedman & Manes): a Bloom filter
 * that a key must pass once before the count-min sketch counts it, so keys
 * seen only once in an aging period never occupy sketch counters. Blocked:
 * a key's three bits share one 32-bit word, so a lookup reads one word.
 * False positives make a key look seen once more than it was; so that a
 * stream of new keys (a scan) cannot saturate it, it forgets everything
 * once it holds one key per 4 bits (one per expected entry), besides
 * when the sketch ages. Memory:
 * DOORKEEPER_BITS_PER_ENTRY / 8 bytes per expected entry, rounded up to a
 * power of two, and at least 2 KiB.
 */
export class Doorkeeper {
  #words = new Uint32Array(0);
  #wordShift = 32;
  /** Keys added since the last clear, and how many it may hold. */
  #keys = 0;
  #maxKeys = 0;

  /** @param expectedEntries keys the filter should hold with few false positives */
  constructor(expectedEntries: number) {
    this.ensureCapacity(expectedEntries);
  }

  /** Grow to suit `expectedEntries`; growing forgets all keys. */
  ensureCapacity(expectedEntries: number): void {
    const bits = Math.max(expectedEntries * DOORKEEPER_BITS_PER_ENTRY, DOORKEEPER_MIN_BITS);
    const wanted = Math.min(Math.ceil(bits / 32), MAX_WORDS);
    let words = 1;
    while (words < wanted) words *= 2;
    if (words <= this.#words.length) return;
    this.#words = new Uint32Array(words);
    this.#wordShift = 32 - Math.log2(words);
    this.#keys = 0;
    this.#maxKeys = (words * 32) / BITS_PER_KEY;
  }

  /** Whether `hash` may have been added since the last clear (false positives possible). */
  has(hash: number): boolean {
    const h = mix32(hash ^ 0x5bd1e995);
    const mask = probeMask(h);
    return ((this.#words[this.#word(h)] as number) & mask) === mask;
  }

  /** Add `hash`; returns whether it was (apparently) present already. */
  add(hash: number): boolean {
    const h = mix32(hash ^ 0x5bd1e995);
    const mask = probeMask(h);
    const word = this.#word(h);
    const value = this.#words[word] as number;
    if ((value & mask) === mask) return true;
    if (++this.#keys > this.#maxKeys) {
      this.clear();
      this.#keys = 1;
      this.#words[word] = mask;
      return false;
    }
    this.#words[word] = value | mask;
    return false;
  }

  /** Forget every key. */
  clear(): void {
    this.#words.fill(0);
    this.#keys = 0;
  }

  #word(h: number): number {
    return this.#wordShift === 32 ? 0 : h >>> this.#wordShift;
  }
}

/** Three bit positions (PROBES), from 5-bit groups of a remix of `h` (its high bits already chose the word). */
function probeMask(h: number): number {
  const bits = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return (1 << (bits & 31)) | (1 << ((bits >>> 5) & 31)) | (1 << ((bits >>> 10) & 31));
}
