import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ScalarType, fromBinary, toBinary, create, type DescField, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import {
  CacheService,
  CallStatusSchema,
  GetOrLeaseRequestSchema,
  GetOrLeaseResponseSchema,
  GetRequestSchema,
  GetResponseSchema,
  LeaseSessionReadySchema,
  LeaseSessionRequestSchema,
  LeaseSessionResponseSchema,
  ReleaseLeaseRequestSchema,
  ReleaseLeaseResponseSchema,
  SetRequestSchema,
  SetResponseSchema,
  StreamGetRequestSchema,
  StreamGetResponseSchema,
  StreamSetRequestSchema,
} from "../../gen/tiercache/v1/cache_pb.js";
import { configureTextEncoding, getTextEncoding } from "@bufbuild/protobuf/wire";
import { compiledCodec } from "../../core/wire/compiled-codec.js";
import { messageCodec } from "../../core/wire/message-codec.js";

/** Strings with everything UTF-16 can hold, lone surrogates included. */
const anyString = fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.string({ unit: "binary" }), fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) }));

function scalarArbitrary(field: DescField): fc.Arbitrary<unknown> {
  const scalar = field.fieldKind === "enum" ? ScalarType.INT32 : (field as { scalar: ScalarType }).scalar;
  switch (scalar) {
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.STRING:
      return anyString;
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 300 });
    case ScalarType.INT32:
      return fc.oneof(fc.integer({ min: -5, max: 300 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));
    case ScalarType.UINT32:
      return fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
    case ScalarType.INT64:
      return fc.oneof(fc.bigInt({ min: -5n, max: 1n << 20n }), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }));
    case ScalarType.UINT64:
      return fc.oneof(fc.bigInt({ min: 0n, max: 1n << 20n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
    case ScalarType.DOUBLE:
      return fc.double();
    default:
      return fc.constant(undefined);
  }
}

/** Random init shapes of `schema`: each field absent, a default, or random; each oneof absent, without a case, or any of its cases. */
function initArbitrary(schema: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const oneof of schema.oneofs) {
    const none = fc.constantFrom<unknown>({ case: undefined }, {});
    const cases = oneof.fields.map((f) => (f.fieldKind === "message" ? (depth > 2 ? fc.constant({}) : initArbitrary(f.message, depth + 1)) : scalarArbitrary(f)).map((value) => ({ case: f.localName, value })));
    parts[oneof.localName] = fc.oneof(none, ...cases);
  }
  for (const field of schema.fields) {
    if (field.oneof) continue;
    let value: fc.Arbitrary<unknown>;
    if (field.fieldKind === "list") {
      value = field.listKind === "message" ? (depth > 2 ? fc.constant([]) : fc.array(initArbitrary(field.message, depth + 1), { maxLength: 4 })) : fc.array(scalarArbitrary(field), { maxLength: 4 });
    } else if (field.fieldKind === "message") {
      value = depth > 2 ? fc.constant(undefined) : initArbitrary(field.message, depth + 1);
    } else if (field.fieldKind === "map") {
      value = fc.constant(undefined);
    } else {
      value = scalarArbitrary(field);
    }
    parts[field.localName] = value;
  }
  return fc.record(parts, { requiredKeys: [] });
}

/** One field occurrence on the wire, and whether the compiled reader must take it (rather than leave it to protobuf-es). */
interface Occurrence {
  readonly number: number;
  readonly bytes: number[];
  readonly ok: boolean;
}

/** `n` (64-bit two's complement) as a varint made `pad` bytes longer than needed: overlong, but legal protobuf. */
function varintOf(n: bigint, pad: number): number[] {
  const out: number[] = [];
  let rest = BigInt.asUintN(64, n);
  while (rest > 0x7fn) {
    out.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  out.push(Number(rest));
  for (let i = 0; i < pad; i++) {
    out[out.length - 1]! |= 0x80;
    out.push(0);
  }
  return out;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
function isUtf8(bytes: Uint8Array): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function wireTypeOf(field: DescField): number {
  if (field.fieldKind === "enum") return 0;
  if (field.fieldKind === "scalar") return field.scalar === ScalarType.STRING || field.scalar === ScalarType.BYTES ? 2 : 0;
  return 2;
}

/** Mostly 0, sometimes up to `max`: how many bytes longer than needed a varint is written. */
const padding = (max: number) => fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max }) });

/**
 * One occurrence of `field`. The reader must take it when its tag takes at
 * most 2 bytes, a varint value is in the field's range (bool 0..1, int32 and
 * enum 0..2^31-1, uint32 0..2^32-1, 64-bit 0..2^49-1) in at most 7 bytes, a
 * length is at most 4 bytes, and a string is valid UTF-8.
 */
function occurrenceOf(field: DescField, depth: number): fc.Arbitrary<Occurrence> {
  const wireType = wireTypeOf(field);
  const tagOf = (pad: number) => varintOf(BigInt((field.number << 3) | wireType), pad);
  if (wireType === 0) {
    const scalar = field.fieldKind === "enum" ? ScalarType.INT32 : (field as { scalar: ScalarType }).scalar;
    const limit = scalar === ScalarType.BOOL ? 1n : scalar === ScalarType.INT32 ? 2n ** 31n - 1n : scalar === ScalarType.UINT32 ? 2n ** 32n - 1n : 2n ** 49n - 1n;
    const value = fc.oneof({ weight: 4, arbitrary: fc.bigInt({ min: 0n, max: limit }) }, { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }) });
    return fc.tuple(padding(2), value, padding(6)).map(([tagPad, v, pad]) => {
      const tag = tagOf(tagPad);
      const bytes = varintOf(v, pad);
      return { number: field.number, bytes: [...tag, ...bytes], ok: tag.length <= 2 && v >= 0n && v <= limit && bytes.length <= 7 };
    });
  }
  const isMessage = field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message");
  const isString = !isMessage && (field as { scalar?: ScalarType }).scalar === ScalarType.STRING;
  const payload: fc.Arbitrary<{ body: number[]; ok: boolean }> = isMessage
    ? depth > 2
      ? fc.constant({ body: [], ok: true })
      : occurrencesOf(field.message!, depth + 1).map((list) => ({ body: list.flatMap((o) => o.bytes), ok: list.every((o) => o.ok) }))
    : isString
      ? fc.oneof({ weight: 5, arbitrary: anyString.map((s) => new TextEncoder().encode(s)) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 8 }) }).map((b) => ({ body: [...b], ok: isUtf8(b) }))
      : fc.uint8Array({ maxLength: 40 }).map((b) => ({ body: [...b], ok: true }));
  return fc.tuple(padding(2), payload, padding(4)).map(([tagPad, { body, ok }, pad]) => {
    const tag = tagOf(tagPad);
    const length = varintOf(BigInt(body.length), pad);
    return { number: field.number, bytes: [...tag, ...length, ...body], ok: ok && tag.length <= 2 && length.length <= 4 };
  });
}

/**
 * Fields of `schema` in any order and number: repeated fields split and
 * interleaved with others, singular fields repeated (the last one wins),
 * members of a oneof one after another (the last one wins), overlong
 * varints, and now and then an unknown field, a second singular message or
 * the oneof member already set again (which protobuf-es merges, and the
 * reader leaves to it).
 */
function occurrencesOf(schema: DescMessage, depth: number): fc.Arbitrary<Occurrence[]> {
  const known = new Set(schema.fields.map((f) => f.number));
  const unknown = fc
    .tuple(fc.integer({ min: 1, max: 40 }).filter((n) => !known.has(n)), fc.integer({ min: 0, max: 300 }))
    .map(([number, value]) => ({ number, bytes: [...varintOf(BigInt(number << 3), 0), ...varintOf(BigInt(value), 0)], ok: false }));
  const one = schema.fields.length > 0 ? fc.oneof({ weight: 12, arbitrary: fc.oneof(...schema.fields.map((f) => occurrenceOf(f, depth))) }, { weight: 1, arbitrary: unknown }) : unknown;
  const singularMessages = new Set(schema.fields.filter((f) => f.fieldKind === "message").map((f) => f.number));
  const groupOf = new Map(schema.fields.flatMap((f) => (f.oneof ? [[f.number, f.oneof.localName] as const] : [])));
  return fc.array(one, { maxLength: depth > 0 ? 4 : 12 }).map((list) => {
    const seen = new Set<number>();
    const cases = new Map<string, number>();
    return list.map((o) => {
      const group = groupOf.get(o.number);
      if (group !== undefined) {
        const again = cases.get(group) === o.number;
        cases.set(group, o.number);
        return again ? { ...o, ok: false } : o;
      }
      if (!singularMessages.has(o.number)) return o;
      const again = seen.has(o.number);
      seen.add(o.number);
      return again ? { ...o, ok: false } : o;
    });
  });
}

/** The property names of `value` and of everything inside it, in order. */
function shapeOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shapeOf);
  if (typeof value !== "object" || value === null || value instanceof Uint8Array) return typeof value;
  return Object.entries(value).map(([k, v]) => [k, shapeOf(v)]);
}

const LEASE_SESSION = [
  LeaseSessionRequestSchema,
  LeaseSessionResponseSchema,
  GetOrLeaseRequestSchema,
  GetOrLeaseResponseSchema,
  SetResponseSchema,
  ReleaseLeaseRequestSchema,
  ReleaseLeaseResponseSchema,
  LeaseSessionReadySchema,
  CallStatusSchema,
];
const HOT = [GetRequestSchema, GetResponseSchema, SetRequestSchema, StreamGetRequestSchema, StreamGetResponseSchema, StreamSetRequestSchema, ...LEASE_SESSION];
const ALL = [...new Set([...CacheService.methods.flatMap((m) => [m.input, m.output]), ...LEASE_SESSION])];

describe("compiled codec against protobuf-es", () => {
  it("applies to the hot messages", () => {
    for (const schema of HOT) expect(compiledCodec(schema), schema.typeName).toBeDefined();
  });

  for (const schema of ALL) {
    const codec = compiledCodec(schema);
    if (!codec) continue;
    describe(schema.typeName, () => {
      it("encodes init shapes and messages to protobuf-es's bytes", () => {
        fc.assert(
          fc.property(initArbitrary(schema), (init) => {
            const expected = toBinary(schema, create(schema, init));
            const fromInit = codec.encode(init);
            const fromMessage = codec.encode(create(schema, init));
            expect(fromMessage && Buffer.from(fromMessage).equals(Buffer.from(expected))).toBe(true);
            expect(fromInit && Buffer.from(fromInit).equals(Buffer.from(expected))).toBe(true);
          }),
          { numRuns: 300 },
        );
      });

      it("decodes protobuf-es's bytes to protobuf-es's message, or leaves them to protobuf-es", () => {
        fc.assert(
          fc.property(initArbitrary(schema), (init) => {
            const bytes = toBinary(schema, create(schema, init));
            const decoded = codec.decode(bytes);
            const hasNegativeOrHuge = decoded === undefined;
            if (hasNegativeOrHuge) return;
            const expected = fromBinary(schema, bytes);
            expect(decoded).toStrictEqual(expected);
            expect(shapeOf(decoded)).toEqual(shapeOf(expected));
          }),
          { numRuns: 300 },
        );
      });

      it("decodes fields in any order, split, repeated and overlong exactly as protobuf-es, and takes every such message it must", () => {
        fc.assert(
          fc.property(occurrencesOf(schema, 0), (list) => {
            const bytes = new Uint8Array(list.flatMap((o) => o.bytes));
            const decoded = codec.decode(bytes);
            if (list.every((o) => o.ok)) expect(decoded).toBeDefined();
            if (decoded === undefined) return;
            const expected = fromBinary(schema, bytes);
            expect(decoded).toStrictEqual(expected);
            expect(shapeOf(decoded)).toEqual(shapeOf(expected));
          }),
          { numRuns: 1000 },
        );
      });

      it("decodes mangled and random bytes exactly as protobuf-es, or leaves them to it", () => {
        const mangled = fc
          .tuple(initArbitrary(schema), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat())
          .map(([init, flips, cut]) => {
            const bytes = Buffer.from(toBinary(schema, create(schema, init)));
            for (const [at, value] of flips) if (bytes.length > 0) bytes[at % bytes.length] = value;
            return bytes.subarray(0, bytes.length === 0 ? 0 : bytes.length - (cut % 3 === 0 ? cut % bytes.length : 0));
          });
        fc.assert(
          fc.property(fc.oneof(mangled, fc.uint8Array({ maxLength: 64 })), (bytes) => {
            const decoded = codec.decode(bytes);
            if (decoded === undefined) return;
            expect(decoded).toStrictEqual(fromBinary(schema, bytes));
          }),
          { numRuns: 1000 },
        );
      });
    });
  }

  it("decodes the common case itself rather than falling back", () => {
    const codec = compiledCodec(GetResponseSchema)!;
    const bytes = toBinary(GetResponseSchema, create(GetResponseSchema, { found: true, value: new Uint8Array([1, 2, 3]), contentType: "application/json", ttlRemainingMs: 5000n, tier: 1, streamId: "s-1", freshRemainingMs: 5000n }));
    expect(codec.decode(bytes)).toEqual(fromBinary(GetResponseSchema, bytes));
    const response = compiledCodec(StreamGetResponseSchema)!;
    const stream = toBinary(StreamGetResponseSchema, create(StreamGetResponseSchema, { entries: [{ key: "ключ", value: new Uint8Array(10), ttlRemainingMs: 1n }], missing: ["a", "b"] }));
    expect(response.decode(stream)).toEqual(fromBinary(StreamGetResponseSchema, stream));
  });

  it("keeps a leading U+FEFF in string fields, on the compiled path and on protobuf-es's", () => {
    // A TextDecoder drops a leading byte-order mark by default: "\uFEFFuser:1" decoded as "user:1", another key.
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.constantFrom("\ufeff", "\ufeff\ufeff"), (rest, bom) => {
        const key = bom + rest;
        const get = messageCodec(GetRequestSchema);
        expect(get.decode(get.encode({ namespace: bom, key })).key).toBe(key);
        expect(get.decode(get.encode({ namespace: bom, key })).namespace).toBe(bom);
        const withUnknown = Buffer.concat([get.encode({ key }), Buffer.from([0x50, 0x01])]);
        expect(compiledCodec(GetRequestSchema)!.decode(withUnknown)).toBeUndefined();
        expect(get.decode(withUnknown).key).toBe(key);
        const set = messageCodec(SetRequestSchema);
        const decodedSet = set.decode(set.encode({ key, contentType: key, tags: [key, rest || "t"], value: new Uint8Array(1) }));
        expect([decodedSet.key, decodedSet.contentType, ...decodedSet.tags]).toEqual([key, key, key, rest || "t"]);
        const stream = messageCodec(StreamGetResponseSchema);
        const decodedStream = stream.decode(stream.encode({ entries: [{ key, value: new Uint8Array(1), contentType: key }], missing: [key] }));
        expect([decodedStream.entries[0]!.key, decodedStream.entries[0]!.contentType, ...decodedStream.missing]).toEqual([key, key, key]);
      }),
      { numRuns: 200 },
    );
  });

  it("leaves the process's protobuf-es text encoding as it was, and keeps a leading U+FEFF whatever the program set", () => {
    const get = messageCodec(GetRequestSchema);
    const withUnknown = Buffer.concat([get.encode({ key: "\ufeffk" }), Buffer.from([0x50, 0x01])]);
    const before = getTextEncoding();
    expect(get.decode(withUnknown).key).toBe("\ufeffk");
    expect(getTextEncoding()).toBe(before);
    const programs = { ...before, decodeUtf8: (bytes: Uint8Array) => new TextDecoder().decode(bytes) };
    configureTextEncoding(programs);
    try {
      expect(get.decode(withUnknown).key).toBe("\ufeffk");
      expect(getTextEncoding()).toBe(programs);
    } finally {
      configureTextEncoding(before);
    }
  });

  it("messageCodec falls back to protobuf-es for what the compiled codec leaves, errors included", () => {
    const codec = messageCodec(GetRequestSchema);
    const withUnknown = Buffer.concat([Buffer.from(toBinary(GetRequestSchema, create(GetRequestSchema, { key: "k" }))), Buffer.from([0x50, 0x01])]);
    expect(codec.decode(withUnknown)).toEqual(fromBinary(GetRequestSchema, withUnknown));
    const badUtf8 = Buffer.from([0x12, 0x01, 0xff]);
    expect(() => codec.decode(badUtf8)).toThrow();
    expect(() => fromBinary(GetRequestSchema, badUtf8)).toThrow();
    const odd = { key: 5 } as unknown as { key: string };
    expect(compiledCodec(GetRequestSchema)!.encode(odd)).toBeUndefined();
    expect(codec.encode(odd).equals(Buffer.from(toBinary(GetRequestSchema, create(GetRequestSchema, odd))))).toBe(true);
  });

  it("leaves oneof shapes it does not take, and a oneof member merged with itself, to protobuf-es", () => {
    const compiled = compiledCodec(LeaseSessionRequestSchema)!;
    const codec = messageCodec(LeaseSessionRequestSchema);
    type Init = MessageInitShape<typeof LeaseSessionRequestSchema>;
    const odd = [{ call: { case: "bogus", value: {} } }, { call: { case: "set" } }, { call: null }, { call: "set" }, { call: { case: "set", value: 1 } }] as unknown as Init[];
    for (const init of odd) {
      expect(compiled.encode(init), JSON.stringify(init)).toBeUndefined();
      const expected = (() => {
        try {
          return Buffer.from(toBinary(LeaseSessionRequestSchema, create(LeaseSessionRequestSchema, init)));
        } catch (err) {
          return err;
        }
      })();
      if (expected instanceof Buffer) expect(codec.encode(init).equals(expected)).toBe(true);
      else expect(() => codec.encode(init)).toThrow((expected as Error).message);
    }
    const set = (value: { key?: string; tags?: string[] }) => toBinary(LeaseSessionRequestSchema, create(LeaseSessionRequestSchema, { call: { case: "set", value } }));
    const getOrLease = toBinary(LeaseSessionRequestSchema, create(LeaseSessionRequestSchema, { id: 2n, call: { case: "getOrLease", value: { key: "g" } } }));
    const merged = Buffer.concat([set({ key: "k" }), set({ tags: ["t"] })]);
    expect(compiled.decode(merged)).toBeUndefined();
    expect(codec.decode(merged)).toEqual(fromBinary(LeaseSessionRequestSchema, merged));
    expect(codec.decode(merged).call).toMatchObject({ case: "set", value: { key: "k", tags: ["t"] } });
    const replaced = Buffer.concat([set({ key: "k" }), getOrLease, set({ tags: ["t"] })]);
    expect(compiled.decode(replaced)).toStrictEqual(fromBinary(LeaseSessionRequestSchema, replaced));
    expect(compiled.decode(replaced)!.call).toMatchObject({ case: "set", value: { key: "", tags: ["t"] } });
  });
});
