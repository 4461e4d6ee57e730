import fc from "fast-check";

/** U+0000–U+001F, one at a time. */
const controlChar = fc.integer({ min: 0, max: 0x1f }).map((code) => String.fromCharCode(code));

/** One character of each UTF-8 width (1 to 4 bytes), for keys near the byte limit. */
const WIDE_CHARS = ["a", "é", "€", "😀"] as const;

/** A few short keys: length 1, a control character, an astral character. */
const shortKeys: fc.Arbitrary<string[]> = fc.tuple(
  fc.constantFrom("a", "b", "Z", "0", " "),
  controlChar,
  fc.constantFrom("😀", "𝄞", "\u{10FFFF}", "\u{1F600}x", "é", "\u00a0"),
).map((keys) => [...keys]);

/** Keys of 63, 64 and 65 characters of one letter. */
const lengthKeys: fc.Arbitrary<string[]> = fc
  .constantFrom("k", "x", "é")
  .map((char) => [char.repeat(63), char.repeat(64), char.repeat(65)]);

/**
 * Keys equal in their first 64+ characters that differ later, often in a
 * control character (U+0000–U+0004 included): stores that truncate or
 * escape long keys badly alias them.
 */
const sharedPrefixKeys: fc.Arbitrary<string[]> = fc
  .tuple(
    fc.oneof(fc.string({ unit: "grapheme-ascii", minLength: 64, maxLength: 70 }), fc.constantFrom("p".repeat(64), "\u0000".repeat(64))),
    fc.uniqueArray(fc.oneof({ weight: 3, arbitrary: controlChar }, { weight: 1, arbitrary: fc.constantFrom("", "a", "😀", "\u0000\u0000", "\u0001z") }), {
      minLength: 2,
      maxLength: 3,
    }),
  )
  .map(([prefix, suffixes]) => suffixes.map((suffix) => prefix + suffix));

/**
 * Keys at and around `maxKeyBytes` UTF-8 bytes built from multi-byte
 * characters: exactly at the limit (two of them, differing only in the last
 * character), one byte under it, over it by a character that straddles the
 * limit (invalid), and exactly at it with a multi-byte last character.
 */
function maxBytesKeys(maxKeyBytes: number): fc.Arbitrary<string[]> {
  return fc.constantFrom(...WIDE_CHARS).map((char) => {
    const width = Buffer.byteLength(char, "utf8");
    const body = char.repeat(Math.floor((maxKeyBytes - 1) / width));
    const fill = "a".repeat(maxKeyBytes - 1 - Buffer.byteLength(body, "utf8"));
    const under = body + fill; // maxKeyBytes - 1 bytes
    const head = char.repeat(Math.floor((maxKeyBytes - width) / width));
    const endsWide = head + "a".repeat(maxKeyBytes - width - Buffer.byteLength(head, "utf8")) + char; // exactly maxKeyBytes
    return [`${under}a`, `${under}b`, under, `${under}é`, endsWide];
  });
}

/** A key led by U+FEFF and the same key without it: a UTF-8 decoder that drops a byte-order mark aliases them. */
const byteOrderMarkKeys: fc.Arbitrary<string[]> = fc.constantFrom("a", "user:1", "\ufeff", "é").map((key) => [`\ufeff${key}`, key]);

/** Arbitrary well-formed strings: every Unicode code point, astral ones included. */
const randomKeys: fc.Arbitrary<string[]> = fc.uniqueArray(
  fc.oneof(fc.string({ unit: "binary", minLength: 1, maxLength: 16 }), fc.string({ unit: "grapheme", minLength: 1, maxLength: 8 })),
  { minLength: 1, maxLength: 2 },
);

/** Keys every call must refuse with INVALID_ARGUMENT: empty, or holding a lone surrogate. */
const invalidKeys: fc.Arbitrary<string[]> = fc.constantFrom("", "\ud800", "a\udc00", "\udbff", `${"x".repeat(70)}\ud83d`).map((key) => [key]);

/** Either the group's keys or none. */
function sometimes(group: fc.Arbitrary<string[]>, weight: number): fc.Arbitrary<string[]> {
  // The empty choice first: shrinking moves towards it, so counterexamples keep only the keys they need.
  return fc.oneof({ weight: 10 - weight, arbitrary: fc.constant<string[]>([]) }, { weight, arbitrary: group });
}

/**
 * A key for humans: JSON, with runs of 8 or more of one character written
 * as `"p"×64`, e.g. `"p"×64 + "\u0000"`.
 */
export function shortKey(key: string): string {
  const parts: string[] = [];
  let literal = "";
  const chars = [...key];
  for (let i = 0; i < chars.length; ) {
    let j = i;
    while (j < chars.length && chars[j] === chars[i]) j++;
    if (j - i >= 8) {
      if (literal) parts.push(JSON.stringify(literal));
      literal = "";
      parts.push(`${JSON.stringify(chars[i])}×${j - i}`);
    } else literal += chars.slice(i, j).join("");
    i = j;
  }
  if (literal || parts.length === 0) parts.push(JSON.stringify(literal));
  return parts.join(" + ");
}

/** The keys of one run; counterexamples print them short, with their indexes. */
export class KeyPool {
  constructor(readonly keys: readonly string[]) {}

  [fc.toStringMethod](): string {
    return `keys(${this.keys.map((key, i) => `k#${i}: ${shortKey(key)}`).join(", ")}; k#n names k#(n mod ${this.keys.length}))`;
  }
}

/**
 * The keys of one run: a few groups of adversarial keys (each present or
 * not), deduplicated, never empty. Commands name keys by index into it, so
 * that a run reuses its keys often.
 */
export function keyPoolArb(maxKeyBytes: number): fc.Arbitrary<KeyPool> {
  return fc
    .tuple(
      sometimes(shortKeys, 7),
      sometimes(lengthKeys, 3),
      sometimes(sharedPrefixKeys, 5),
      sometimes(maxBytesKeys(maxKeyBytes), 3),
      sometimes(randomKeys, 5),
      sometimes(byteOrderMarkKeys, 4),
      sometimes(invalidKeys, 2),
    )
    .map((groups) => {
      const keys = [...new Set(groups.flat())];
      return new KeyPool(keys.length > 0 ? keys : ["a"]);
    });
}

/** The key a command's index names in a run's pool. */
export function keyAt(pool: readonly string[], index: number): string {
  return pool[index % pool.length]!;
}
