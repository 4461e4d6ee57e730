import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import binding from "zstd-napi/binding.js";
import {
  ENVELOPE_HEADER_BYTES,
  EXPIRES_AT_OFFSET,
  ValueCodec,
  type CodecOptions,
} from "../../core/codec.js";
import { CorruptValueError, InvalidArgumentError, TiercacheError, ValueTooLargeError } from "../../core/errors.js";

const MiB = 1024 * 1024;

/** Builds an envelope by hand from the spec, as another implementation would. */
function envelope(fields: {
  version?: number;
  flags?: number;
  expiresAt?: number;
  declared: number;
  contentType?: Uint8Array | string;
  payload: Uint8Array;
}): Buffer {
  const type = typeof fields.contentType === "string" ? Buffer.from(fields.contentType) : (fields.contentType ?? Buffer.alloc(0));
  const out = Buffer.alloc(ENVELOPE_HEADER_BYTES + type.byteLength + fields.payload.byteLength);
  out[0] = fields.version ?? 1;
  out[1] = fields.flags ?? 0;
  out.writeDoubleBE(fields.expiresAt ?? 0, 2);
  out.writeUInt32BE(fields.declared, 10);
  out[14] = type.byteLength;
  out.set(type, 15);
  out.set(fields.payload, 15 + type.byteLength);
  return out;
}

function zstd(data: Uint8Array, options: { contentSize?: boolean } = {}): Buffer {
  const cctx = new binding.CCtx();
  cctx.setParameter(binding.CParameter.compressionLevel, 1);
  if (options.contentSize === false) cctx.setParameter(binding.CParameter.contentSizeFlag, 0);
  const out = Buffer.allocUnsafe(binding.compressBound(data.byteLength));
  return Buffer.from(out.subarray(0, cctx.compress2(out, data)));
}

/** Compressible but not trivial: repeated text. */
function text(bytes: number): Buffer {
  const line = Buffer.from("tiercache stores values in tiers; values compress well when they repeat.\n");
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += line.length) line.copy(out, i);
  return out;
}

const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

describe("ValueCodec round trips", () => {
  const contentType = fc.string({ maxLength: 60, unit: "grapheme" }).filter((s) => Buffer.byteLength(s) <= 255);
  const expiresAt = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
  const payload = fc.oneof(
    fc.uint8Array({ maxLength: 4096 }),
    fc.tuple(fc.integer({ min: 0, max: 8192 }), fc.integer({ min: 0, max: 255 })).map(([n, b]) => Buffer.alloc(n, b)),
    fc.integer({ min: 0, max: 20_000 }).map(text),
  );
  const options = fc.record(
    {
      compressionThreshold: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.constant(Infinity)),
      compressionLevel: fc.integer({ min: -5, max: 9 }),
    },
    { requiredKeys: [] },
  );

  it("decodes what it encodes", () => {
    fc.assert(
      fc.property(options, payload, contentType, expiresAt, (opts, value, type, expiry) => {
        const codec = new ValueCodec(opts as CodecOptions);
        const encoded = codec.encode(value, type, expiry);
        const decoded = codec.decode(encoded);
        expect(bytesEqual(decoded.value, value)).toBe(true);
        expect(decoded.contentType).toBe(type);
        expect(decoded.expiresAt).toBe(expiry);
        expect(ValueCodec.expiresAt(encoded)).toBe(expiry);
        // A fresh codec (another process) reads it too.
        expect(bytesEqual(new ValueCodec().decode(encoded).value, value)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("writes the envelope layout of the spec", () => {
    const codec = new ValueCodec();
    const encoded = Buffer.from(codec.encode(Buffer.from("hello"), "text/plain", 1_700_000_000_123));
    expect(encoded).toStrictEqual(
      envelope({ expiresAt: 1_700_000_000_123, declared: 5, contentType: "text/plain", payload: Buffer.from("hello") }),
    );
    expect(ENVELOPE_HEADER_BYTES).toBe(15);
    expect(EXPIRES_AT_OFFSET).toBe(2);
    expect(encoded.readDoubleBE(EXPIRES_AT_OFFSET)).toBe(1_700_000_000_123);
  });

  it("reads an envelope written by another implementation, compressed or not", () => {
    const codec = new ValueCodec();
    const raw = codec.decode(envelope({ declared: 3, contentType: "é/x", payload: Buffer.from("abc"), expiresAt: 7 }));
    expect(raw).toStrictEqual({ value: Buffer.from("abc"), contentType: "é/x", expiresAt: 7, compressed: false, freshUntil: 0, tags: undefined });
    const data = text(3000);
    const compressed = codec.decode(envelope({ flags: 1, declared: data.length, payload: zstd(data) }));
    expect(compressed.compressed).toBe(true);
    expect(compressed.contentType).toBe("");
    expect(bytesEqual(compressed.value, data)).toBe(true);
  });

  it("handles empty values and content types", () => {
    const codec = new ValueCodec({ compressionThreshold: 0 });
    const decoded = codec.decode(codec.encode(new Uint8Array(0), "", 0));
    expect(decoded).toStrictEqual({ value: Buffer.alloc(0), contentType: "", expiresAt: 0, compressed: false, freshUntil: 0, tags: undefined });
  });

  it("reads an envelope inside a larger buffer (non-zero byteOffset)", () => {
    const codec = new ValueCodec();
    for (const value of [Buffer.from("small"), text(5000)]) {
      const encoded = codec.encode(value, "a/b", 42);
      const host = new Uint8Array(encoded.byteLength + 7);
      host.set(encoded, 3);
      const view = host.subarray(3, 3 + encoded.byteLength);
      expect(bytesEqual(codec.decode(view).value, value)).toBe(true);
      expect(ValueCodec.expiresAt(view)).toBe(42);
    }
  });
});

describe("compression threshold", () => {
  it("stores values below the threshold raw", () => {
    const codec = new ValueCodec({ compressionThreshold: 1024 });
    const value = text(1023);
    const encoded = codec.encode(value, "t", 0);
    expect(encoded[1]).toBe(0);
    expect(encoded.byteLength).toBe(ENVELOPE_HEADER_BYTES + 1 + 1023);
    expect(codec.decode(encoded).compressed).toBe(false);
  });

  it("compresses compressible values at or above the threshold, and they get smaller", () => {
    const codec = new ValueCodec({ compressionThreshold: 1024 });
    for (const size of [1024, 4096, MiB]) {
      const value = text(size);
      const encoded = codec.encode(value, "t", 0);
      expect(encoded[1]).toBe(1);
      expect(encoded.byteLength).toBeLessThan(ENVELOPE_HEADER_BYTES + 1 + size);
      const decoded = codec.decode(encoded);
      expect(decoded.compressed).toBe(true);
      expect(bytesEqual(decoded.value, value)).toBe(true);
    }
  });

  it("stores incompressible values raw even above the threshold", () => {
    const codec = new ValueCodec({ compressionThreshold: 16 });
    const value = randomBytes(64 * 1024);
    const encoded = codec.encode(value, "", 0);
    expect(encoded[1]).toBe(0);
    expect(encoded.byteLength).toBe(ENVELOPE_HEADER_BYTES + value.length);
    expect(codec.stats).toStrictEqual({ bytesIn: value.length, bytesStored: value.length, compressed: 0, compressionSkipped: 0 });
  });

  it("never compresses with an Infinity threshold", () => {
    const codec = new ValueCodec({ compressionThreshold: Infinity });
    expect(codec.encode(Buffer.alloc(100_000), "", 0)[1]).toBe(0);
  });

  it("counts bytes in, bytes stored and compressed values", () => {
    const codec = new ValueCodec();
    expect(codec.stats).toStrictEqual({ bytesIn: 0, bytesStored: 0, compressed: 0, compressionSkipped: 0 });
    codec.encode(Buffer.alloc(10), "", 0);
    const big = codec.encode(Buffer.alloc(10_000), "xy", 0);
    const stored = big.byteLength - ENVELOPE_HEADER_BYTES - 2;
    expect(codec.stats).toStrictEqual({ bytesIn: 10_010, bytesStored: 10 + stored, compressed: 1, compressionSkipped: 0 });
  });

  it("reuses its buffers without mixing up results", () => {
    const codec = new ValueCodec({ compressionThreshold: 0 });
    const values = [text(50_000), Buffer.alloc(3000, 1), text(2000), randomBytes(5000), text(70_000)];
    const encoded = values.map((v) => codec.encode(v, "x", 1));
    encoded.forEach((e, i) => expect(bytesEqual(codec.decode(e).value, values[i]!)).toBe(true));
  });
});

describe("limits and arguments", () => {
  it("refuses to encode a value over maxValueBytes", () => {
    const codec = new ValueCodec({ maxValueBytes: 1000 });
    expect(codec.encode(Buffer.alloc(1000), "", 0).byteLength).toBeGreaterThan(0);
    expect(() => codec.encode(Buffer.alloc(1001), "", 0)).toThrow(ValueTooLargeError);
    expect(() => new ValueCodec().encode(Buffer.alloc(MiB + 1), "", 0)).toThrow(ValueTooLargeError);
  });

  it("refuses to decode a value declared over maxValueBytes", () => {
    const encoded = new ValueCodec({ maxValueBytes: 10 * MiB }).encode(text(2 * MiB), "", 0);
    expect(() => new ValueCodec().decode(encoded)).toThrow(ValueTooLargeError);
    const raw = envelope({ declared: 11, payload: Buffer.alloc(11) });
    expect(() => new ValueCodec({ maxValueBytes: 10 }).decode(raw)).toThrow(ValueTooLargeError);
  });

  it("refuses a content type over 255 UTF-8 bytes", () => {
    const codec = new ValueCodec();
    expect(codec.decode(codec.encode(Buffer.alloc(1), "x".repeat(255), 0)).contentType).toBe("x".repeat(255));
    expect(() => codec.encode(Buffer.alloc(1), "x".repeat(256), 0)).toThrow(InvalidArgumentError);
    expect(() => codec.encode(Buffer.alloc(1), "é".repeat(128), 0)).toThrow(InvalidArgumentError); // 256 bytes
    expect(() => codec.encode(Buffer.alloc(1), "text/\ud800", 0)).toThrow(InvalidArgumentError);
  });

  it("keeps content types apart when they alternate", () => {
    const codec = new ValueCodec();
    const types = ["a/b", "", "é/ü", "a/b", "a/c", "", "x".repeat(255), "\ufeffbom"];
    const encoded = types.map((t) => codec.encode(Buffer.from(t), t, 0));
    encoded.forEach((e, i) => expect(codec.decode(e).contentType).toBe(types[i]));
    expect(encoded.map((e) => new ValueCodec().decode(e).contentType)).toStrictEqual(types);
  });

  it.each([-1, 1.5, NaN, Infinity, 2 ** 53])("refuses expiresAt %s", (expiresAt) => {
    const codec = new ValueCodec();
    expect(() => codec.encode(Buffer.alloc(1), "", expiresAt)).toThrow(InvalidArgumentError);
    expect(() => ValueCodec.withExpiresAt(codec.encode(Buffer.alloc(1), "", 0), expiresAt)).toThrow(InvalidArgumentError);
  });

  it.each<CodecOptions>([
    { compressionThreshold: -1 },
    { compressionThreshold: NaN },
    { compressionThreshold: 1.5 },
    { compressionLevel: 1.5 },
    { compressionLevel: 99 },
    { maxValueBytes: -1 },
    { maxValueBytes: 2 ** 32 },
  ])("rejects options %o", (options) => {
    expect(() => new ValueCodec(options)).toThrow(InvalidArgumentError);
  });

  it("exposes resolved options", () => {
    expect(new ValueCodec().options).toStrictEqual({ compressionThreshold: 1024, compressionLevel: 1, maxValueBytes: MiB });
  });
});

describe("corrupt envelopes", () => {
  const codec = new ValueCodec();
  const raw = codec.encode(Buffer.from("some raw value"), "text/plain", 5);
  const compressed = codec.encode(text(5000), "text/plain", 5);

  it("refuses every truncation", () => {
    for (const encoded of [raw, compressed]) {
      for (let length = 0; length < encoded.byteLength; length++) {
        expect(() => codec.decode(encoded.subarray(0, length)), `length ${length}`).toThrow(CorruptValueError);
      }
    }
  });

  it("refuses trailing bytes after a raw payload", () => {
    expect(() => codec.decode(Buffer.concat([raw, Buffer.from([0])]))).toThrow(CorruptValueError);
  });

  it.each([
    ["version 0", envelope({ version: 0, declared: 1, payload: Buffer.alloc(1) })],
    ["version 2", envelope({ version: 2, declared: 1, payload: Buffer.alloc(1) })],
    ["unknown flag bit", envelope({ flags: 0b10, declared: 1, payload: Buffer.alloc(1) })],
    ["NaN expiresAt", envelope({ expiresAt: NaN, declared: 1, payload: Buffer.alloc(1) })],
    ["negative expiresAt", envelope({ expiresAt: -5, declared: 1, payload: Buffer.alloc(1) })],
    ["fractional expiresAt", envelope({ expiresAt: 1.5, declared: 1, payload: Buffer.alloc(1) })],
    ["invalid UTF-8 content type", envelope({ contentType: Buffer.from([0xff, 0xfe]), declared: 1, payload: Buffer.alloc(1) })],
    ["declared length mismatch", envelope({ declared: 2, payload: Buffer.alloc(1) })],
    ["compressed, empty payload", envelope({ flags: 1, declared: 0, payload: Buffer.alloc(0) })],
    ["compressed, not zstd", envelope({ flags: 1, declared: 10, payload: Buffer.from("not zstd at all") })],
    ["compressed, expands to less than declared", envelope({ flags: 1, declared: 5000, payload: zstd(text(4000)) })],
    ["compressed, expands to more than declared", envelope({ flags: 1, declared: 3000, payload: zstd(text(4000)) })],
    [
      "compressed, no size in frame, expands to more than declared",
      envelope({ flags: 1, declared: 3000, payload: zstd(text(4000), { contentSize: false }) }),
    ],
    ["compressed, trailing garbage", envelope({ flags: 1, declared: 4000, payload: Buffer.concat([zstd(text(4000)), Buffer.from([1, 2])]) })],
  ])("refuses %s", (_name, encoded) => {
    expect(() => codec.decode(encoded)).toThrow(CorruptValueError);
  });

  it("only ever throws domain errors on random damage", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(raw, compressed),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (original, edits) => {
          const damaged = Buffer.from(original);
          for (const [at, byte] of edits) damaged[at % damaged.length] = byte;
          try {
            codec.decode(damaged);
          } catch (err) {
            expect(err).toBeInstanceOf(TiercacheError);
          }
        },
      ),
      { numRuns: 2000 },
    );
    // The codec still works after all that.
    expect(bytesEqual(codec.decode(compressed).value, text(5000))).toBe(true);
  });

  it("makes expiresAt and withExpiresAt refuse a broken header", () => {
    expect(() => ValueCodec.expiresAt(raw.subarray(0, 14))).toThrow(CorruptValueError);
    expect(() => ValueCodec.withExpiresAt(raw.subarray(0, 14), 1)).toThrow(CorruptValueError);
    const wrongVersion = Buffer.from(raw);
    wrongVersion[0] = 9;
    expect(() => ValueCodec.expiresAt(wrongVersion)).toThrow(CorruptValueError);
  });
});

describe("zstd bombs", () => {
  const codec = new ValueCodec(); // maxValueBytes 1 MiB
  let bomb: Buffer; // 64 MiB of zeros, frame header states the size
  let headerless: Buffer; // the same without a content size in the frame header
  let lying: Buffer; // frame header claims 100 bytes

  beforeAll(() => {
    const zeros = Buffer.alloc(64 * MiB);
    bomb = zstd(zeros);
    headerless = zstd(zeros, { contentSize: false });
    expect(binding.getFrameContentSize(bomb)).toBe(64 * MiB);
    expect(binding.getFrameContentSize(headerless)).toBeNull();
    // Patch the frame content size field (4 bytes after magic, FHD and window descriptor).
    lying = Buffer.from(bomb);
    expect(lying[4]! >> 6).toBe(2); // 4-byte FCS field
    expect((lying[4]! >> 5) & 1).toBe(0); // window descriptor present
    lying.writeUInt32LE(100, 6);
    expect(binding.getFrameContentSize(lying)).toBe(100);
  });

  function refusedQuickly(encoded: Uint8Array, error: new (...args: never[]) => Error): void {
    const before = process.memoryUsage().arrayBuffers;
    const start = performance.now();
    expect(() => codec.decode(encoded)).toThrow(error);
    expect(performance.now() - start).toBeLessThan(500);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * MiB);
  }

  it("refuses a bomb in an envelope declaring a small length", () => {
    refusedQuickly(envelope({ flags: 1, declared: 100, payload: bomb }), ValueTooLargeError);
  });

  it("refuses a bomb in an envelope declaring its real, too large length", () => {
    refusedQuickly(envelope({ flags: 1, declared: 64 * MiB, payload: bomb }), ValueTooLargeError);
  });

  it("refuses a bomb whose frame header omits its size", () => {
    refusedQuickly(envelope({ flags: 1, declared: 100, payload: headerless }), ValueTooLargeError);
    refusedQuickly(envelope({ flags: 1, declared: MiB, payload: headerless }), ValueTooLargeError);
  });

  it("refuses a bomb whose frame header lies about its size", () => {
    refusedQuickly(envelope({ flags: 1, declared: 100, payload: lying }), CorruptValueError);
  });

  it("still decodes normally afterwards", () => {
    const value = text(200_000);
    expect(bytesEqual(codec.decode(codec.encode(value, "", 0)).value, value)).toBe(true);
  });
});

describe("expiresAt and withExpiresAt", () => {
  const codec = new ValueCodec();

  it("reads expiresAt without decoding", () => {
    expect(ValueCodec.expiresAt(codec.encode(text(5000), "", 1234))).toBe(1234);
    expect(ValueCodec.expiresAt(codec.encode(Buffer.alloc(0), "", 0))).toBe(0);
  });

  it("returns a copy with the new expiry and leaves the original alone", () => {
    for (const value of [Buffer.from("raw"), text(5000)]) {
      const original = codec.encode(value, "text/plain", 1000);
      const snapshot = Buffer.from(original);
      const touched = ValueCodec.withExpiresAt(original, 2000);
      expect(touched).not.toBe(original);
      expect(Buffer.from(original)).toStrictEqual(snapshot);
      expect(ValueCodec.expiresAt(touched)).toBe(2000);
      const decoded = codec.decode(touched);
      expect(decoded.expiresAt).toBe(2000);
      expect(decoded.contentType).toBe("text/plain");
      expect(bytesEqual(decoded.value, value)).toBe(true);
      // Only the expiry bytes differ.
      expect(Buffer.from(touched).subarray(10)).toStrictEqual(snapshot.subarray(10));
      expect(ValueCodec.expiresAt(ValueCodec.withExpiresAt(touched, 0))).toBe(0);
    }
  });
});

describe("ValueCodec grace (freshUntil)", () => {
  it("stores freshUntil only when given, and round-trips it compressed or not", () => {
    const codec = new ValueCodec({ compressionThreshold: 64 });
    const small = codec.encode(Buffer.from("v"), "text/plain", 2_000, 1_000);
    expect(codec.decode(small)).toMatchObject({ expiresAt: 2_000, freshUntil: 1_000, compressed: false });
    expect(small[1]).toBe(0x02);
    const big = codec.encode(Buffer.alloc(10_000, 97), "text/plain", 2_000, 1_000);
    expect(codec.decode(big)).toMatchObject({ expiresAt: 2_000, freshUntil: 1_000, compressed: true });
    expect(codec.decode(big).value).toEqual(Buffer.alloc(10_000, 97));
    expect(codec.encode(Buffer.from("v"), "t", 5).byteLength).toBe(small.byteLength - 8 - ("text/plain".length - 1));
  });

  it("drops grace on touch: freshUntil becomes the new expiry", () => {
    const codec = new ValueCodec();
    const touched = ValueCodec.withExpiresAt(codec.encode(Buffer.from("v"), "t", 2_000, 1_000), 9_000);
    expect(codec.decode(touched)).toMatchObject({ expiresAt: 9_000, freshUntil: 9_000 });
  });

  it("refuses an envelope truncated inside freshUntil", () => {
    const codec = new ValueCodec();
    const env = codec.encode(Buffer.alloc(0), "t", 2_000, 1_000);
    expect(() => codec.decode(env.subarray(0, env.byteLength - 3))).toThrow(/truncated inside its freshUntil/);
  });
});
