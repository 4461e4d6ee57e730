import { createHash } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { loneSurrogateIndex } from "../../core/key-rules.js";
import { strictUtf8 } from "../../core/utf8.js";
import { EncodedMessage } from "../../core/wire/encoded-message.js";
import { messageCodec } from "../../core/wire/message-codec.js";
import { FoundEntrySchema, StreamGetResponseSchema } from "../../gen/tiercache/v1/cache_pb.js";
import type { TierName } from "../../server/engine/durable-tier.js";
import type { FoundInPlace, FoundValue, Hit } from "../../server/engine/cache-engine.js";
import { streamGetResponseOf, TIER_NUMBERS } from "../../server/rpc/found-entries-message.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { engineWith } from "../helpers/test-engine.js";

const TIER_NAMES: TierName[] = ["memory", "lmdb", "redis"];

/** Text as keys and content types may hold it: any well-formed string, ASCII or not, with or without a leading U+FEFF. */
const text = fc.oneof(fc.string({ maxLength: 70 }), fc.string({ unit: "grapheme", maxLength: 40 }), fc.string({ unit: "binary", maxLength: 20 }).map((s) => `\uFEFF${s}`)).filter((s) => loneSurrogateIndex(s) < 0);
const millis = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));

/** An entry whose value sits after `prefix` bytes of its buffer, as it does inside an envelope. */
const placed: fc.Arbitrary<FoundInPlace & { readonly contentType: string }> = fc
  .record({
    key: text,
    prefix: fc.uint8Array({ maxLength: 40 }),
    value: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 70_000 }).map((n) => new Uint8Array(n).fill(7))),
    contentType: text,
    ttlRemainingMs: millis,
    tier: fc.constantFrom(...TIER_NAMES),
    stale: fc.boolean(),
    freshRemainingMs: millis,
  })
  .map(({ prefix, value, ...rest }) => {
    const bytes = Buffer.concat([prefix, value]);
    return { ...rest, bytes, valueStart: prefix.byteLength, contentTypeBytes: Buffer.from(rest.contentType, "utf8") };
  });

/** The same entry as the general codecs take it. */
function asEntry(e: FoundInPlace) {
  return { key: e.key, value: e.bytes.subarray(e.valueStart), contentType: strictUtf8.decode(e.contentTypeBytes), ttlRemainingMs: BigInt(e.ttlRemainingMs), tier: TIER_NUMBERS[e.tier], stale: e.stale, freshRemainingMs: BigInt(e.freshRemainingMs) };
}

describe("StreamGet responses written straight from found values", () => {
  it("are the bytes protobuf-es writes for the same message", () => {
    fc.assert(
      fc.property(fc.array(placed, { maxLength: 12 }), fc.array(text, { maxLength: 6 }), (entries, missing) => {
        const expected = Buffer.from(toBinary(StreamGetResponseSchema, create(StreamGetResponseSchema, { entries: entries.map(asEntry), missing })));
        expect(streamGetResponseOf(entries, missing).bytes().equals(expected)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("are sent as they are, into the shared send buffer when large, and decode back to the entries", () => {
    const codec = messageCodec(StreamGetResponseSchema);
    fc.assert(
      fc.property(fc.array(placed, { minLength: 1, maxLength: 8 }), (entries) => {
        const sent = codec.encodeToSend(streamGetResponseOf(entries, ["gone"]));
        const decoded = codec.decode(sent);
        expect(decoded.missing).toEqual(["gone"]);
        const digest = (e: { value: Uint8Array }) => ({ ...e, value: createHash("sha256").update(e.value).digest("hex") });
        expect(decoded.entries.map(digest)).toEqual(entries.map((e) => digest(create(FoundEntrySchema, asEntry(e)))));
      }),
      { numRuns: 200 },
    );
  });
});

describe("an encoded message", () => {
  it("is sent by its bytes even when another copy of its module made it, never as an empty message", async () => {
    const secondCopy = "../../core/wire/encoded-message.js?second-copy";
    const other = (await import(/* @vite-ignore */ secondCopy)) as typeof import("../../core/wire/encoded-message.js");
    expect(other.EncodedMessage).not.toBe(EncodedMessage);
    const entries = [{ key: "k", bytes: Buffer.from("value"), valueStart: 0, contentTypeBytes: Buffer.from("text/plain"), ttlRemainingMs: 0, tier: "memory" as const, stale: false, freshRemainingMs: 0 }];
    const mine = streamGetResponseOf(entries, ["gone"]);
    const theirs = new other.EncodedMessage<typeof StreamGetResponseSchema>(mine.byteLength, (buf) => {
      mine.bytes().copy(buf);
      return mine.byteLength;
    });
    const codec = messageCodec(StreamGetResponseSchema);
    for (const sent of [codec.encode(theirs), codec.encodeToSend(theirs)]) expect(codec.decode(sent).missing).toEqual(["gone"]);
  });

  it("fails its send when it writes a length other than the one it announced", () => {
    const codec = messageCodec(StreamGetResponseSchema);
    expect(() => codec.encode(new EncodedMessage<typeof StreamGetResponseSchema>(4, () => 3))).toThrow("wrote 3 bytes of the 4");
  });
});

describe("CacheEngine.placeMany", () => {
  const codec = new ValueCodec({ compressionThreshold: 64 });
  const clock = fakeClock();
  const engine = engineWith(clock, undefined, {}, { codec });

  /** A stored value as some tier holds it, at a moment around now: fresh, stale within grace, or gone. */
  const hit = fc
    .record({
      key: text.filter((k) => k.length > 0),
      value: fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 64, max: 5000 }).map((n) => new Uint8Array(n).fill(n & 0xff))),
      contentType: fc.constantFrom("application/json", "text/plain; charset=utf-8", "", "\uFEFFbin", "é/ü"),
      expiresIn: fc.oneof(fc.constant(undefined), fc.integer({ min: -50, max: 50 })),
      grace: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 })),
      tags: fc.oneof(fc.constant(undefined), fc.constant({ epoch: 3, tags: ["org", "\uFEFFu"] })),
      tier: fc.constantFrom(...TIER_NAMES),
    })
    .map(({ key, value, contentType, expiresIn, grace, tags, tier }): Hit => {
      const now = clock.now();
      const expiresAt = expiresIn === undefined ? 0 : now + expiresIn + grace;
      const freshUntil = expiresIn === undefined || grace === 0 ? 0 : now + expiresIn;
      const envelope = codec.encode(value, contentType, Math.max(0, expiresAt), Math.max(0, freshUntil), tags);
      return { key, envelope, tier, responseBytes: 0 };
    });

  const seen = (f: FoundValue | FoundInPlace) => ({
    key: f.key,
    value: createHash("sha256").update("valueStart" in f ? f.bytes.subarray(f.valueStart) : f.value).digest("hex"),
    contentType: "contentTypeBytes" in f ? strictUtf8.decode(f.contentTypeBytes) : f.contentType,
    ttlRemainingMs: f.ttlRemainingMs,
    tier: f.tier,
    stale: f.stale,
    freshRemainingMs: f.freshRemainingMs,
  });

  it("answers what decodeMany answers, for fresh, stale, expired, compressed and tagged values", () => {
    fc.assert(
      fc.property(fc.array(hit, { maxLength: 10 }), (hits) => {
        expect(engine.placeMany(hits).map(seen)).toEqual(engine.decodeMany(hits).map(seen));
      }),
      { numRuns: 400 },
    );
  });

  it("refuses a corrupt envelope as decodeMany does", () => {
    const good = codec.encode(new Uint8Array([1, 2, 3]), "text/plain", 0);
    const corrupt = [good.subarray(0, 10), Buffer.concat([good, Buffer.from([9])]), Uint8Array.from(good, (b, i) => (i === 1 ? 0x80 : b)), Uint8Array.from(good, (b, i) => (i === 15 ? 0xff : b))];
    for (const envelope of corrupt) {
      const hits: Hit[] = [{ key: "k", envelope, tier: "memory", responseBytes: 0 }];
      const decodeError = (() => {
        try {
          engine.decodeMany(hits);
        } catch (err) {
          return err;
        }
      })();
      expect(decodeError).toBeInstanceOf(Error);
      expect(() => engine.placeMany(hits)).toThrow((decodeError as Error).message);
    }
  });
});
