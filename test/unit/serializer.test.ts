import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CONTENT_TYPE_BINARY,
  CONTENT_TYPE_JSON,
  CONTENT_TYPE_TAGGED_JSON,
  CONTENT_TYPE_TEXT,
  jsonSerializer,
  UnserializableError,
} from "../../client/serializer.js";
import { CorruptValueError } from "../../core/errors.js";

const { encode, decode } = jsonSerializer;

function roundTrip(value: unknown): unknown {
  const { bytes, contentType } = encode(value);
  return decode(bytes, contentType);
}

function text(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("utf8");
}

/**
 * Strict structural equality: same types (Buffer for binary), Object.is for
 * numbers, same own keys in the same order, Map/Set in the same order,
 * undefined members present as own properties.
 */
function sameValue(expected: unknown, actual: unknown, path = "value"): void {
  if (typeof expected !== "object" || expected === null) {
    if (!Object.is(expected, actual)) throw new Error(`${path}: expected ${String(expected)}, got ${String(actual)}`);
    return;
  }
  if (typeof actual !== "object" || actual === null) throw new Error(`${path}: expected an object, got ${String(actual)}`);
  if (expected instanceof Uint8Array) {
    if (!Buffer.isBuffer(actual)) throw new Error(`${path}: expected a Buffer`);
    if (!Buffer.from(expected).equals(actual)) throw new Error(`${path}: bytes differ`);
  } else if (expected instanceof Date) {
    if (!(actual instanceof Date) || !Object.is(expected.getTime(), actual.getTime())) throw new Error(`${path}: dates differ`);
  } else if (expected instanceof Map) {
    if (!(actual instanceof Map) || actual.size !== expected.size) throw new Error(`${path}: maps differ`);
    const a = [...actual];
    [...expected].forEach(([k, v], i) => {
      sameValue(k, a[i]![0], `${path}.<key ${i}>`);
      sameValue(v, a[i]![1], `${path}.<value ${i}>`);
    });
  } else if (expected instanceof Set) {
    if (!(actual instanceof Set) || actual.size !== expected.size) throw new Error(`${path}: sets differ`);
    const a = [...actual];
    [...expected].forEach((v, i) => sameValue(v, a[i], `${path}.<item ${i}>`));
  } else if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) throw new Error(`${path}: arrays differ`);
    for (let i = 0; i < expected.length; i++) {
      if (!Object.hasOwn(actual, i)) throw new Error(`${path}[${i}]: missing element`);
      sameValue(expected[i], actual[i], `${path}[${i}]`);
    }
  } else {
    if (Object.getPrototypeOf(actual) !== Object.prototype) throw new Error(`${path}: expected a plain object`);
    const keys = Object.keys(expected);
    expect(Object.keys(actual), `${path} keys`).toEqual(keys);
    for (const k of keys) {
      sameValue((expected as Record<string, unknown>)[k], (actual as Record<string, unknown>)[k], `${path}.${k}`);
    }
  }
}

const specialKey = fc.constantFrom("$t", "v", "__proto__", "0", "10", "a", "");
const objectKey = fc.oneof({ weight: 3, arbitrary: fc.string({ maxLength: 6 }) }, { weight: 1, arbitrary: specialKey });

/** Builds a plain object with own properties, "__proto__" included. */
function toObject(entries: readonly (readonly [string, unknown])[]): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(object, k, { value: v, enumerable: true, writable: true, configurable: true });
  return object;
}

const leaf = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }), // includes lone surrogates
  fc.double(), // includes NaN, ±Infinity, -0
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt(),
  fc.date(), // includes invalid dates
  fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a)),
  fc.record({ $t: fc.constantFrom("Date", "undefined", "Object", "Number"), v: fc.string() }),
);

const { value: anyValue } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, tie("array"), tie("object"), tie("map"), tie("set")),
  array: fc.array(tie("value"), { maxLength: 5 }),
  object: fc.array(fc.tuple(objectKey, tie("value")), { maxLength: 5 }).map(toObject),
  map: fc.array(fc.tuple(tie("value"), tie("value")), { maxLength: 4 }).map((entries) => new Map(entries)),
  set: fc.array(tie("value"), { maxLength: 4 }).map((items) => new Set(items)),
}));

describe("jsonSerializer round trips", () => {
  it("is lossless for any supported value", () => {
    fc.assert(
      fc.property(anyValue, (value) => {
        sameValue(value, roundTrip(value));
      }),
      { numRuns: 2000 },
    );
  });

  it("is lossless for fast-check's anything (dates, bigints, maps, sets)", () => {
    const anything = fc.anything({ withDate: true, withBigInt: true, withMap: true, withSet: true, withSparseArray: false });
    fc.assert(
      fc.property(anything, (value) => {
        sameValue(value, roundTrip(value));
      }),
      { numRuns: 1000 },
    );
  });

  it("keeps each special value", () => {
    const values: unknown[] = [
      undefined,
      NaN,
      Infinity,
      -Infinity,
      -0,
      0,
      12345678901234567890n,
      -1n,
      new Date(0),
      new Date(8.64e15),
      new Date(-8.64e15),
      new Date(NaN),
      new Map<unknown, unknown>([["b", 1], [{ k: 1 }, [2]], [undefined, null]]),
      new Set<unknown>([3, "1", 2, undefined, null]),
      { buf: Buffer.from([0, 1, 2, 255]) },
      [undefined, null, undefined],
      { a: undefined, b: null },
      { $t: "Date", v: "2020-01-01T00:00:00.000Z", when: new Date(1) },
      [{ $t: "undefined" }, undefined],
      "\ud800 lone surrogate",
    ];
    for (const value of values) sameValue(value, roundTrip(value));
  });

  it("keeps an undefined property as an own property", () => {
    const decoded = roundTrip({ a: undefined, b: 1 }) as Record<string, unknown>;
    expect(Object.hasOwn(decoded, "a")).toBe(true);
    expect(decoded).toStrictEqual({ a: undefined, b: 1 });
  });

  it("keeps Map and Set insertion order", () => {
    const map = new Map<unknown, unknown>([["z", 1], [3, 2], ["a", 3], [1n, 4]]);
    expect([...(roundTrip(map) as Map<unknown, unknown>).keys()]).toStrictEqual(["z", 3, "a", 1n]);
    expect([...(roundTrip(new Set(["z", "a", "m"])) as Set<unknown>)]).toStrictEqual(["z", "a", "m"]);
  });

  it("turns array holes into undefined elements", () => {
    // eslint-disable-next-line no-sparse-arrays
    const decoded = roundTrip([1, , 3]) as unknown[];
    expect(Object.hasOwn(decoded, 1)).toBe(true);
    expect(decoded).toStrictEqual([1, undefined, 3]);
  });

  it("keeps an own __proto__ key as data, in both formats", () => {
    for (const extra of [1, undefined]) {
      const value = toObject([["__proto__", { polluted: true }], ["x", extra]]);
      const decoded = roundTrip(value) as Record<string, unknown>;
      expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
      expect(Object.hasOwn(decoded, "__proto__")).toBe(true);
      sameValue(value, decoded);
    }
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });
});

describe("plain JSON", () => {
  it("is written as application/json, byte-identical to JSON.stringify", () => {
    fc.assert(
      // fc.jsonValue() may hold -0, which plain JSON cannot keep: normalise it away.
      fc.property(fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown), (value) => {
        const { bytes, contentType } = encode(value);
        expect(contentType).toBe(CONTENT_TYPE_JSON);
        expect(text(bytes)).toBe(JSON.stringify(value));
        // Another language reads it as ordinary JSON.
        expect(JSON.parse(text(bytes))).toStrictEqual(value);
        expect(decode(bytes, contentType)).toStrictEqual(value);
      }),
      { numRuns: 1000 },
    );
  });

  it("tags -0, which JSON.stringify would write as 0", () => {
    expect(encode({ x: -0 }).contentType).toBe(CONTENT_TYPE_TAGGED_JSON);
    expect(encode({ x: 0 }).contentType).toBe(CONTENT_TYPE_JSON);
  });

  it("leaves objects with a $t key alone", () => {
    const value = { $t: "Date", v: "2020-01-01T00:00:00.000Z", nested: [{ $t: "undefined" }] };
    const { bytes, contentType } = encode(value);
    expect(contentType).toBe(CONTENT_TYPE_JSON);
    expect(text(bytes)).toBe(JSON.stringify(value));
    expect(decode(bytes, contentType)).toStrictEqual(value);
  });

  it("does not revive tags in JSON written by another language", () => {
    const foreign = Buffer.from('{"$t":"BigInt","v":"12","list":[{"$t":"undefined"}]}');
    expect(decode(foreign, CONTENT_TYPE_JSON)).toStrictEqual({ $t: "BigInt", v: "12", list: [{ $t: "undefined" }] });
    expect(decode(foreign, "Application/JSON; charset=utf-8")).toStrictEqual({ $t: "BigInt", v: "12", list: [{ $t: "undefined" }] });
  });

  it("serializes class instances as JSON.stringify does, honouring toJSON", () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
      norm(): number {
        return Math.hypot(this.x, this.y);
      }
    }
    class Money {
      constructor(readonly cents: number) {}
      toJSON(): string {
        return `${this.cents / 100} EUR`;
      }
    }
    const value = { at: new Point(1, 2), price: new Money(150), list: [new Money(1)] };
    const { bytes, contentType } = encode(value);
    expect(contentType).toBe(CONTENT_TYPE_JSON);
    expect(text(bytes)).toBe(JSON.stringify(value));
    expect(decode(bytes, contentType)).toStrictEqual({ at: { x: 1, y: 2 }, price: "1.5 EUR", list: ["0.01 EUR"] });
  });

  it("tags what a toJSON result needs tagged", () => {
    const value = { toJSON: () => ({ when: new Date(5), big: 5n }) };
    const { contentType, bytes } = encode(value);
    expect(contentType).toBe(CONTENT_TYPE_TAGGED_JSON);
    sameValue({ when: new Date(5), big: 5n }, decode(bytes, contentType));
  });

  it("unboxes boxed primitives", () => {
    const value = [Object("s"), Object(1), Object(true)];
    const { bytes, contentType } = encode(value);
    expect(contentType).toBe(CONTENT_TYPE_JSON);
    expect(text(bytes)).toBe('["s",1,true]');
    sameValue([1n, NaN], roundTrip([Object(1n), Object(NaN)]));
  });
});

describe("tagged JSON wire format", () => {
  const cases: [unknown, string][] = [
    [undefined, '{"$t":"undefined"}'],
    [NaN, '{"$t":"Number","v":"NaN"}'],
    [-0, '{"$t":"Number","v":"-0"}'],
    [[Infinity, -Infinity], '[{"$t":"Number","v":"Infinity"},{"$t":"Number","v":"-Infinity"}]'],
    [-42n, '{"$t":"BigInt","v":"-42"}'],
    [new Date(Date.UTC(2024, 1, 29, 12)), '{"$t":"Date","v":"2024-02-29T12:00:00.000Z"}'],
    [new Date(NaN), '{"$t":"Date","v":null}'],
    [{ b: Buffer.from("hi!?") }, '{"b":{"$t":"Bytes","v":"aGkhPw=="}}'],
    [new Map<unknown, unknown>([[1n, "x"], ["k", undefined]]), '{"$t":"Map","v":[[{"$t":"BigInt","v":"1"},"x"],["k",{"$t":"undefined"}]]}'],
    [new Set([1, "a"]), '{"$t":"Set","v":[1,"a"]}'],
    [{ a: undefined, $t: 1 }, '{"$t":"Object","v":{"a":{"$t":"undefined"},"$t":1}}'],
    [[{ $t: "x", v: { $t: "y" } }, 1n], '[{"$t":"Object","v":{"$t":"x","v":{"$t":"Object","v":{"$t":"y"}}}},{"$t":"BigInt","v":"1"}]'],
  ];

  it.each(cases)("encodes %o as %s", (value, expected) => {
    const { bytes, contentType } = encode(value);
    expect(contentType).toBe(CONTENT_TYPE_TAGGED_JSON);
    expect(text(bytes)).toBe(expected);
    sameValue(value, decode(Buffer.from(expected), CONTENT_TYPE_TAGGED_JSON));
  });

  it("reads tagged JSON written by another language", () => {
    const foreign = Buffer.from(
      '{"n":{"$t":"Number","v":"-Infinity"},"m":{"$t":"Map","v":[[{"$t":"Set","v":[1]},{"$t":"Bytes","v":""}]]},"o":{"$t":"Object","v":{"$t":{"$t":"undefined"}}}}',
    );
    const decoded = decode(foreign, `${CONTENT_TYPE_TAGGED_JSON}; charset=utf-8`);
    sameValue({ n: -Infinity, m: new Map([[new Set([1]), Buffer.alloc(0)]]), o: { $t: undefined } }, decoded);
  });

  it.each([
    "{not json",
    '{"$t":"Nope","v":1}',
    '{"$t":"undefined","v":1}',
    '{"$t":"BigInt","v":"1.5"}',
    '{"$t":"BigInt"}',
    '{"$t":"Number","v":"nan"}',
    '{"$t":"Date","v":"not a date"}',
    '{"$t":"Bytes","v":"***"}',
    '{"$t":"Map","v":[[1]]}',
    '{"$t":"Set","v":{}}',
    '{"$t":"Object","v":[1]}',
    '{"$t":"Date","v":null,"extra":1}',
  ])("refuses malformed tagged JSON %s", (input) => {
    expect(() => decode(Buffer.from(input), CONTENT_TYPE_TAGGED_JSON)).toThrow(CorruptValueError);
  });

  it("refuses malformed plain JSON", () => {
    expect(() => decode(Buffer.from("[1,"), CONTENT_TYPE_JSON)).toThrow(CorruptValueError);
  });
});

describe("bytes inside a tagged value", () => {
  it("are decoded into buffers of their own, not slices of a shared pool a kept value would hold", () => {
    const encoded = jsonSerializer.encode(new Map([["a", Buffer.alloc(10, 1)], ["b", new Uint8Array(0)]]));
    const decoded = jsonSerializer.decode(encoded.bytes, encoded.contentType) as Map<string, Buffer>;
    for (const bytes of decoded.values()) {
      expect(Buffer.isBuffer(bytes)).toBe(true);
      expect([bytes.byteOffset, bytes.buffer.byteLength]).toEqual([0, bytes.byteLength]);
    }
    expect(decoded.get("a")).toEqual(Buffer.alloc(10, 1));
  });
});

describe("binary and text", () => {
  it("stores a top-level Uint8Array or Buffer raw", () => {
    for (const value of [new Uint8Array([1, 2, 3]), Buffer.from("raw bytes")]) {
      const { bytes, contentType } = encode(value);
      expect(contentType).toBe(CONTENT_TYPE_BINARY);
      expect(Buffer.from(bytes).equals(Buffer.from(value))).toBe(true);
      const decoded = decode(bytes, contentType);
      expect(Buffer.isBuffer(decoded)).toBe(true);
      expect((decoded as Buffer).equals(Buffer.from(value))).toBe(true);
    }
  });

  it("decodes text/plain, with parameters, to a string", () => {
    const bytes = Buffer.from("héllo ✓");
    expect(decode(bytes, CONTENT_TYPE_TEXT)).toBe("héllo ✓");
    expect(decode(bytes, "text/plain; charset=UTF-8")).toBe("héllo ✓");
    expect(decode(bytes, "TEXT/PLAIN")).toBe("héllo ✓");
  });

  it("decodes other or empty content types to a Buffer", () => {
    const bytes = new Uint8Array([123, 125]);
    for (const contentType of ["", "image/png", "application/x-custom", "application/jsonx"]) {
      const decoded = decode(bytes, contentType);
      expect(Buffer.isBuffer(decoded)).toBe(true);
      expect([...(decoded as Buffer)]).toStrictEqual([123, 125]);
    }
  });
});

describe("unserializable values", () => {
  it("refuses built-ins JSON would flatten to {} or index keys, anywhere, with UnserializableError naming the path; a toJSON makes them fine", () => {
    const lossy: [unknown, string][] = [
      [new Uint16Array([1, 2]), "Uint16Array"],
      [new Float64Array([1.5]), "Float64Array"],
      [new DataView(new ArrayBuffer(2)), "DataView"],
      [new ArrayBuffer(2), "ArrayBuffer"],
      [new Error("boom"), "Error"],
      [new TypeError("bad"), "TypeError"],
      [/ab+c/gi, "RegExp"],
      [new WeakMap(), "WeakMap"],
      [new WeakSet(), "WeakSet"],
      [Promise.resolve(1), "Promise"],
    ];
    for (const [value, name] of lossy) {
      expect(() => encode(value)).toThrow(UnserializableError);
      expect(() => encode(value)).toThrow(new RegExp(`cannot serialize a ${name}`));
      let nested: unknown;
      try {
        encode({ list: [1, new Map([["k", value]])] });
      } catch (err) {
        nested = err;
      }
      expect(nested).toBeInstanceOf(UnserializableError);
      expect((nested as UnserializableError).message).toMatch(/at value\["list"\]\[1\]\["<map value k>"\]$/);
    }
    const withToJson = Object.assign(new Uint16Array([1, 2]), { toJSON: () => [1, 2] });
    const encoded = encode({ a: withToJson });
    expect(decode(encoded.bytes, encoded.contentType)).toStrictEqual({ a: [1, 2] });
  });

  it("refuses a cycle with a TypeError", () => {
    const object: Record<string, unknown> = { a: 1 };
    object["self"] = object;
    expect(() => encode(object)).toThrow(TypeError);
    expect(() => encode(object)).toThrow(/cyclic.*\["self"\]/);
    const list: unknown[] = [];
    list.push({ inner: list });
    expect(() => encode(list)).toThrow(/cyclic/);
    const map = new Map<string, unknown>();
    map.set("me", map);
    expect(() => encode(map)).toThrow(/cyclic/);
  });

  it("accepts a shared, non-cyclic reference", () => {
    const shared = { n: 1 };
    sameValue({ a: shared, b: shared, c: [shared] }, roundTrip({ a: shared, b: shared, c: [shared] }));
  });

  it("refuses functions and symbols with a TypeError naming the path", () => {
    expect(() => encode({ a: [1, { f: () => 1 }] })).toThrow(TypeError);
    expect(() => encode({ a: [1, { f: () => 1 }] })).toThrow(/function value at value\["a"\]\[1\]\["f"\]/);
    expect(() => encode(Symbol("s"))).toThrow(/symbol/);
    expect(() => encode(() => 1)).toThrow(TypeError);
    expect(() => encode(new Set([Symbol.iterator]))).toThrow(TypeError);
  });
});
