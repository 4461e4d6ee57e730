import { mix32 } from "./hash.js";

/** Bits of filter per expected entry. */
export const DOORKEEPER_BITS_PER_ENTRY = 8;
/** Bits set per key, all within one 32-bit word (a blocked Bloom filter). */
const PROBES = 3;
/** Largest filter: 2^27 bits (16 MiB). */
const MAX_WORDS = 1 << 22;

/**
 * The doorkeeper of TinyLFU (Einziger, Friedman & Manes): a Bloom filter
 * that a key must pass once before the count-min sketch counts it, so keys
 * seen only once in an aging period never occupy sketch counters. Blocked:
 * a key's bits share one 32-bit word, so a lookup reads one word.
 * False positives make a key look seen once more than it was. Memory:
 * DOORKEEPER_BITS_PER_ENTRY / 8 bytes per expected entry, rounded up to a
 * power of two.
 */
export class Doorkeeper {
  #words = new Uint32Array(0);
  #wordShift = 32;

  /** @param expectedEntries keys the filter should hold with few false positives */
  constructor(expectedEntries: number) {
    this.ensureCapacity(expectedEntries);
  }

  /** Grow to suit `expectedEntries`; growing forgets all keys. */
  ensureCapacity(expectedEntries: number): void {
    const wanted = Math.min(Math.ceil((Math.max(expectedEntries, 1) * DOORKEEPER_BITS_PER_ENTRY) / 32), MAX_WORDS);
    let words = 1;
    while (words < wanted) words *= 2;
    if (words <= this.#words.length) return;
    this.#words = new Uint32Array(words);
    this.#wordShift = 32 - Math.log2(words);
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
    this.#words[word] = value | mask;
    return false;
  }

  /** Forget every key. */
  clear(): void {
    this.#words.fill(0);
  }

  #word(h: number): number {
    return this.#wordShift === 32 ? 0 : h >>> this.#wordShift;
  }
}

/** PROBES bit positions, from 5-bit groups of a remix of `h` (its high bits already chose the word). */
function probeMask(h: number): number {
  const bits = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  let mask = 0;
  for (let i = 0; i < PROBES; i++) mask |= 1 << ((bits >>> (5 * i)) & 31);
  return mask;
}
