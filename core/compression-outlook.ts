/** Consecutive attempts that saved nothing before a content type's values skip compression. */
const MISSES_BEFORE_SKIPPING = 4;
/** Values skipped after the first run of misses; doubled after each further miss. */
const FIRST_SKIP = 16;
const LONGEST_SKIP = 1024;
/** Content types remembered at most (forgotten all at once past it). */
const MAX_TYPES = 64;

interface Outlook {
  misses: number;
  skip: number;
}

/**
 * Remembers, per content type, whether compressing its recent values saved
 * anything, so that values that never compress (already compressed media,
 * encrypted or random bytes) stop paying for the attempt. After 4
 * consecutive misses a content type skips its next 16 values, then tries
 * one again; each further miss doubles the skip, up to 1,024 values; one
 * saving resets it.
 */
export class CompressionOutlook {
  readonly #types = new Map<string, Outlook>();
  #skipped = 0;

  /** Whether to try compressing the next value of `contentType`. */
  shouldTry(contentType: string): boolean {
    const outlook = this.#types.get(contentType);
    if (outlook === undefined || outlook.skip === 0) return true;
    outlook.skip--;
    this.#skipped++;
    return false;
  }

  /** Learns how an attempt for `contentType` went. */
  record(contentType: string, saved: boolean): void {
    if (saved) {
      this.#types.delete(contentType);
      return;
    }
    let outlook = this.#types.get(contentType);
    if (outlook === undefined) {
      if (this.#types.size >= MAX_TYPES) this.#types.clear();
      outlook = { misses: 0, skip: 0 };
      this.#types.set(contentType, outlook);
    }
    outlook.misses++;
    if (outlook.misses >= MISSES_BEFORE_SKIPPING) outlook.skip = Math.min(LONGEST_SKIP, FIRST_SKIP * 2 ** (outlook.misses - MISSES_BEFORE_SKIPPING));
  }

  /** Values stored without trying to compress them, since creation. */
  get skipped(): number {
    return this.#skipped;
  }
}
