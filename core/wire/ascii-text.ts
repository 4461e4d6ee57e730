/**
 * ASCII strings out of a buffer, for the compiled reader: short ones are
 * built by one `String.fromCharCode` call of the right arity (cheaper than a
 * native slice call), and short ones seen recently are returned as the same
 * string, found in a small hash table (a content type or namespace repeated
 * in every entry of a batch, a hot key asked for again) — equal strings are
 * indistinguishable, so this is invisible to callers.
 */

/** Node's unchecked `latin1Slice` (present since Node 0.x), or the checked `toString`. */
const fast = Buffer.prototype as unknown as { latin1Slice?: (this: Buffer, start: number, end: number) => string };
const latin1Slice: (buf: Buffer, start: number, end: number) => string = fast.latin1Slice
  ? (buf, start, end) => fast.latin1Slice!.call(buf, start, end)
  : (buf, start, end) => buf.toString("latin1", start, end);

/** Longest string built by `String.fromCharCode`, and longest one remembered. */
const SHORT = 16;
const REMEMBERED = 64;
const SLOTS = 1024;

/** `fromCodes(buf, start, n)`: the n (0..SHORT) bytes at `start` as char codes, one call per length. */
const fromCodes = (() => {
  const cases = Array.from({ length: SHORT + 1 }, (_, n) => `case ${n}: return f(${Array.from({ length: n }, (_, i) => `b[s + ${i}]`).join(", ")});`);
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- fixed source, no input
  const made = new Function("f", `return function fromCodes(b, s, n) { switch (n) {\n${cases.join("\n")}\n} throw new RangeError("too long"); };`)(String.fromCharCode) as (buf: Buffer, start: number, n: number) => string;
  // every case run once, so that the optimized code has type feedback for all of them (else each new length deoptimizes it)
  const sample = Buffer.alloc(SHORT, 0x61);
  for (let round = 0; round < 16; round++) for (let n = 0; n <= SHORT; n++) made(sample, 0, n);
  return made;
})();

const hashes = new Int32Array(SLOTS);
const texts: string[] = new Array<string>(SLOTS).fill("");

function sameText(text: string, buf: Buffer, start: number, n: number): boolean {
  if (text.length !== n) return false;
  for (let i = 0; i < n; i++) if (text.charCodeAt(i) !== buf[start + i]) return false;
  return true;
}

/** The bytes `buf[start, end)` as a string when they are all ASCII, else undefined. */
export function asciiText(buf: Buffer, start: number, end: number): string | undefined {
  const n = end - start;
  if (n > REMEMBERED) {
    for (let i = start; i < end; i++) if (buf[i]! > 0x7f) return undefined;
    return latin1Slice(buf, start, end);
  }
  let high = 0;
  let hash = n;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    high |= c;
    hash = Math.imul(hash ^ c, 0x01000193);
  }
  if (high > 0x7f) return undefined;
  const slot = (hash ^ (hash >>> 16)) & (SLOTS - 1);
  if (hashes[slot] === hash) {
    const seen = texts[slot]!;
    if (sameText(seen, buf, start, n)) return seen;
  }
  const text = n <= SHORT ? fromCodes(buf, start, n) : latin1Slice(buf, start, end);
  hashes[slot] = hash;
  texts[slot] = text;
  return text;
}
