import { inspect, isDeepStrictEqual } from "node:util";
import fc from "fast-check";

/**
 * Values the conformance suite stores: everything the default serializer
 * round-trips exactly (null, undefined, empty and large strings, compressible
 * strings over 1 KiB so that zstd kicks in, Buffers, Dates, Maps, Sets,
 * bigints, special numbers, nested objects with undefined members and "$t"
 * keys). Top-level binary is always a Buffer: a Uint8Array reads back as one.
 */
export function valueArb(): fc.Arbitrary<unknown> {
  const leaf = fc.oneof(
    fc.constantFrom<unknown>(null, undefined, "", true, false, 0, -0, 1.5, NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER),
    fc.string({ unit: "binary", maxLength: 12 }),
    fc.string({ unit: fc.constantFrom("\u0000", "\u001f", "\ud800", "\udc00", "😀", "a", '"', "\\") as fc.Arbitrary<string>, maxLength: 6 }),
    fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
    fc.date({ noInvalidDate: true }),
    fc.uint8Array({ maxLength: 16 }).map((bytes) => Buffer.from(bytes)),
  );
  const { tree } = fc.letrec<{ tree: unknown; node: unknown }>((tie) => ({
    tree: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, tie("node")),
    node: fc.oneof(
      fc.array(tie("tree"), { maxLength: 4 }),
      fc.dictionary(fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom("$t", "v", "__proto__")), tie("tree"), { maxKeys: 4, noNullPrototype: true }),
      fc.array(fc.tuple(fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), tie("tree")), { maxLength: 3 }).map((pairs) => new Map<unknown, unknown>(pairs)),
      fc.uniqueArray(fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), { maxLength: 3 }).map((items) => new Set<unknown>(items)),
    ),
  }));
  const large = fc.oneof(
    // Compressible: zstd shrinks it well below the 1 KiB threshold.
    fc.tuple(fc.constantFrom("ab", "tiercache ", "0", "é€"), fc.integer({ min: 520, max: 3000 })).map(([unit, n]) => unit.repeat(n)),
    // Barely compressible text over the threshold.
    fc.string({ unit: "grapheme-ascii", minLength: 1025, maxLength: 1600 }),
    fc.integer({ min: 1025, max: 8192 }).map((n) => Buffer.alloc(n, 0x61)),
    fc.uint8Array({ minLength: 1025, maxLength: 2048 }).map((bytes) => Buffer.from(bytes)),
    fc.constant({ "$t": "Date", v: "x".repeat(2000), nested: [undefined, new Map([["k", "y".repeat(1500)]])] }),
  );
  return fc.oneof({ weight: 5, arbitrary: leaf }, { weight: 3, arbitrary: tree }, { weight: 1, arbitrary: large });
}

/** Values a loader returns: any value except undefined (a loader's undefined is cached only with negativeTtl). */
export function loaderValueArb(): fc.Arbitrary<unknown> {
  return valueArb().filter((value) => value !== undefined);
}

/**
 * Exact equality of values after a round trip: types, prototypes, -0, NaN,
 * Map and Set order-insensitive contents, Buffers by bytes, own undefined
 * members.
 */
export function sameValue(actual: unknown, expected: unknown): boolean {
  return isDeepStrictEqual(actual, expected);
}

/** A short printable form of a value for failure messages: long strings and buffers abbreviated. */
export function describeValue(value: unknown): string {
  return inspect(value, { depth: 4, maxStringLength: 60, maxArrayLength: 12, breakLength: Infinity });
}
