import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { ENVELOPE_RULES_BYTES, FLAG_TAGS, readTagSection, withNewExpiry } from "../../core/envelope.js";
import { CorruptValueError } from "../../core/errors.js";
import { MAX_TAG_BYTES, MAX_TAGS_PER_ENTRY, MAX_TAGS_PER_INVALIDATION, distinctTags, tagProblem, tagsProblem } from "../../core/tag-rules.js";

const codec = new ValueCodec({ compressionThreshold: 64 });
const validTag = fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }).filter((tag) => tagProblem(tag) === undefined);

describe("envelope tag section", () => {
  it("is absent for a value without tags: not one byte more", () => {
    const plain = codec.encode(Buffer.from("v"), "text/plain", 0);
    const noTags = codec.encode(Buffer.from("v"), "text/plain", 0, 0, { epoch: 3, tags: [] });
    expect(Buffer.compare(Buffer.from(plain), Buffer.from(noTags))).toBe(0);
    expect(readTagSection(plain)).toBeUndefined();
  });

  it("follows the spec layout: after freshUntil, epoch, count, then length-prefixed tags", () => {
    const env = Buffer.from(codec.encode(Buffer.from("hi"), "t", 5_000, 4_000, { epoch: 9, tags: ["a", "éé"] }));
    expect(env[1]! & FLAG_TAGS).toBe(FLAG_TAGS);
    const at = 15 + 1 + 8;
    expect(env.readDoubleBE(at)).toBe(9);
    expect(env[at + 8]).toBe(2);
    expect(env.subarray(at + 9, at + 11)).toEqual(Buffer.from([1, 0x61]));
    expect(env[at + 11]).toBe(4);
    expect(env.subarray(at + 16).toString()).toBe("hi");
  });

  it("round-trips any valid tags with any value, compressed or not, and survives a touch", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(validTag, { minLength: 1, maxLength: MAX_TAGS_PER_ENTRY }),
        fc.nat({ max: 2 ** 40 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.boolean(),
        (tags, epoch, value, grace) => {
          const env = codec.encode(value, "application/json", grace ? 9_000 : 0, grace ? 5_000 : 0, { epoch, tags });
          const decoded = codec.decode(env);
          expect(decoded.tags).toEqual({ epoch, tags });
          expect(Buffer.from(decoded.value)).toEqual(Buffer.from(value));
          expect(readTagSection(withNewExpiry(env, 123))).toMatchObject({ epoch, tags });
          expect(readTagSection(env.subarray(0, ENVELOPE_RULES_BYTES))).toMatchObject({ epoch, tags });
        },
      ),
    );
  });

  it("the rules prefix holds the largest tag section", () => {
    const tags = Array.from({ length: MAX_TAGS_PER_ENTRY }, (_, i) => `${i}`.padEnd(MAX_TAG_BYTES, "x"));
    const env = codec.encode(Buffer.alloc(10_000), "x".repeat(255), 9_000, 5_000, { epoch: 1, tags });
    expect(readTagSection(env.subarray(0, ENVELOPE_RULES_BYTES))?.tags).toEqual(tags);
  });

  it("refuses a truncated or malformed section as corrupt", () => {
    const env = Buffer.from(codec.encode(Buffer.from("v"), "t", 0, 0, { epoch: 1, tags: ["abc"] }));
    expect(() => readTagSection(env.subarray(0, 20))).toThrow(CorruptValueError);
    const zeroCount = Buffer.from(env);
    zeroCount[16 + 8] = 0;
    expect(() => codec.decode(zeroCount)).toThrow(CorruptValueError);
    const longTag = Buffer.from(env);
    longTag[16 + 9] = 200;
    expect(() => codec.decode(longTag)).toThrow(CorruptValueError);
  });
});

describe("tag rules", () => {
  it("accept 1 to 128 UTF-8 bytes of well-formed text", () => {
    expect(tagProblem("user:1")).toBeUndefined();
    expect(tagProblem("é".repeat(64))).toBeUndefined();
    expect(tagProblem("é".repeat(65))).toMatch(/longer than 128 UTF-8 bytes/);
    expect(tagProblem("")).toMatch(/empty/);
    expect(tagProblem("a\uD800")).toMatch(/lone surrogate/);
  });

  it("bound the count per entry and per invalidation", () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`);
    expect(tagsProblem(many(MAX_TAGS_PER_ENTRY), MAX_TAGS_PER_ENTRY, "an entry")).toBeUndefined();
    expect(tagsProblem(many(MAX_TAGS_PER_ENTRY + 1), MAX_TAGS_PER_ENTRY, "an entry")).toMatch(/17 distinct tags, over the limit of 16/);
    expect(tagsProblem(many(MAX_TAGS_PER_INVALIDATION + 1), MAX_TAGS_PER_INVALIDATION, "InvalidateTags")).toMatch(/over the limit of 64/);
    expect(distinctTags(["a", "b", "a"])).toEqual(["a", "b"]);
  });

  it("count duplicates once, as the README and cache.proto say", () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`);
    expect(tagsProblem([...many(MAX_TAGS_PER_ENTRY), "t0"], MAX_TAGS_PER_ENTRY, "an entry")).toBeUndefined();
    expect(tagsProblem([...many(MAX_TAGS_PER_INVALIDATION), "t1", "t1"], MAX_TAGS_PER_INVALIDATION, "InvalidateTags")).toBeUndefined();
    expect(tagsProblem([...many(MAX_TAGS_PER_ENTRY + 1), "t0"], MAX_TAGS_PER_ENTRY, "an entry")).toMatch(/17 distinct tags, over the limit of 16/);
  });
});
