import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ScalarType, fromBinary, toBinary, create, type DescField, type DescMessage } from "@bufbuild/protobuf";
import {
  CacheService,
  GetRequestSchema,
  GetResponseSchema,
  SetRequestSchema,
  StreamGetRequestSchema,
  StreamGetResponseSchema,
  StreamSetRequestSchema,
} from "../../gen/tiercache/v1/cache_pb.js";
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

/** Random init shapes of `schema`: each field absent, a default, or random. */
function initArbitrary(schema: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of schema.fields) {
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

const HOT = [GetRequestSchema, GetResponseSchema, SetRequestSchema, StreamGetRequestSchema, StreamGetResponseSchema, StreamSetRequestSchema];
const ALL = [...new Set(CacheService.methods.flatMap((m) => [m.input, m.output]))];

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
            if (!hasNegativeOrHuge) expect(decoded).toEqual(fromBinary(schema, bytes));
          }),
          { numRuns: 300 },
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
            expect(decoded).toEqual(fromBinary(schema, bytes));
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
});
