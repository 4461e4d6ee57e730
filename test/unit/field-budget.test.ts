import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { create, toBinary } from "@bufbuild/protobuf";
import { GetRequestSchema, LeaseSessionRequestSchema, SetManyRequestSchema, TouchRequestSchema, WatchRequestSchema } from "../../gen/tiercache/v1/cache_pb.js";
import { exceedsFieldBudget } from "../../core/wire/field-budget.js";
import { maxRequestFields } from "../../server/server.js";

const entry = fc.record({
  key: fc.string({ maxLength: 8 }),
  value: fc.uint8Array({ maxLength: 8 }),
  contentType: fc.constantFrom("", "application/json"),
  ttlMs: fc.bigInt({ min: 0n, max: 1000n }),
  graceMs: fc.bigInt({ min: 0n, max: 1000n }),
  tags: fc.array(fc.string({ minLength: 1, maxLength: 4 }), { maxLength: 16 }),
});

/** Fields of an encoded entry: the non-default scalars, one per tag, and the entry field itself. */
function entryFields(e: { key: string; value: Uint8Array; contentType: string; ttlMs: bigint; graceMs: bigint; tags: string[] }): number {
  return 1 + [e.key !== "", e.value.length > 0, e.contentType !== "", e.ttlMs !== 0n, e.graceMs !== 0n].filter(Boolean).length + e.tags.length;
}

describe("exceedsFieldBudget: the fields of a request, nested ones included, counted before decoding", () => {
  it("counts exactly the fields a SetMany request holds: within its own count, over one less", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 6 }), fc.array(entry, { maxLength: 40 }), (namespace, entries) => {
        const bytes = toBinary(SetManyRequestSchema, create(SetManyRequestSchema, { namespace, entries }));
        const fields = (namespace === "" ? 0 : 1) + entries.reduce((sum, e) => sum + entryFields(e), 0);
        expect(exceedsFieldBudget(SetManyRequestSchema, bytes, fields)).toBe(false);
        if (fields > 0) expect(exceedsFieldBudget(SetManyRequestSchema, bytes, fields - 1)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("looks inside messages nested in a oneof (a Set carried by a LeaseSession message)", () => {
    const tags = Array.from({ length: 50 }, (_, i) => `t${i}`);
    const bytes = toBinary(LeaseSessionRequestSchema, create(LeaseSessionRequestSchema, { id: 1n, call: { case: "set", value: { key: "k", tags } } }));
    expect(exceedsFieldBudget(LeaseSessionRequestSchema, bytes, 40)).toBe(true);
    expect(exceedsFieldBudget(LeaseSessionRequestSchema, bytes, 60)).toBe(false);
  });

  it("counts unknown fields, and stops reading once over the budget", () => {
    const unknown = new Uint8Array(2_000_000).fill(0).map((_, i) => (i % 2 === 0 ? 0x78 : 0x00)); // field 15, varint 0, a million times
    expect(exceedsFieldBudget(WatchRequestSchema, unknown, 1_000)).toBe(true);
    expect(exceedsFieldBudget(WatchRequestSchema, unknown, 1_000_000)).toBe(false);
  });

  it("answers false for malformed bytes, which the decoder then refuses", () => {
    expect(exceedsFieldBudget(SetManyRequestSchema, Uint8Array.of(0x12, 0x05, 0x0a), 1)).toBe(false);
    expect(exceedsFieldBudget(SetManyRequestSchema, Uint8Array.of(0xff, 0xff, 0xff), 1)).toBe(false);
  });

  it("counts the fields inside unknown groups, nested ones too, and calls a mismatched group end malformed", () => {
    const varints = (count: number) => Array.from({ length: count }, () => [0x08, 0x00]).flat(); // field 1, varint 0
    const group = (inner: number[]) => [0xfb, 0x01, ...inner, 0xfc, 0x01]; // field 31: start group … end group
    const flat = Uint8Array.from(group(varints(5_000)));
    expect(exceedsFieldBudget(GetRequestSchema, flat, 1_000)).toBe(true);
    expect(exceedsFieldBudget(GetRequestSchema, flat, 10_000)).toBe(false);
    const nested = Uint8Array.from(group(group(group(varints(2_000)))));
    expect(exceedsFieldBudget(GetRequestSchema, nested, 1_000)).toBe(true);
    expect(exceedsFieldBudget(GetRequestSchema, Uint8Array.from([0xfb, 0x01, 0x08, 0x00, 0x84, 0x01]), 10)).toBe(false); // ends group 16
  });

  it("the server's budget holds a full Watch at max-batch 1 and a full batch at one watch namespace", () => {
    const cursor = { namespace: "n".repeat(64), streamId: "0123456789abcdef0123456789abcdef0123", afterSeq: 2n ** 63n };
    const watch = toBinary(WatchRequestSchema, create(WatchRequestSchema, { cursors: Array.from({ length: 1_000 }, () => cursor) }));
    expect(exceedsFieldBudget(WatchRequestSchema, watch, maxRequestFields(1, 1_000))).toBe(false);
    const tags = Array.from({ length: 16 }, (_, i) => `t${i}`);
    const entries = Array.from({ length: 1_000 }, (_, i) => ({ key: `k${i}`, value: Uint8Array.of(1), contentType: "a/b", ttlMs: 1n, graceMs: 1n, tags }));
    const setMany = toBinary(SetManyRequestSchema, create(SetManyRequestSchema, { namespace: "ns", entries }));
    expect(exceedsFieldBudget(SetManyRequestSchema, setMany, maxRequestFields(1_000, 1))).toBe(false);
  });

  it("finds a budget exceeded by the shortest possible message: one more field of two bytes than it allows", () => {
    for (const budget of [0, 1, 7, 1_000]) {
      const fields = (count: number) => Uint8Array.from(Array.from({ length: count }, () => [0x08, 0x00]).flat()); // field 1, varint 0
      expect(exceedsFieldBudget(GetRequestSchema, fields(budget + 1), budget)).toBe(true);
      expect(exceedsFieldBudget(GetRequestSchema, fields(budget), budget)).toBe(false);
      const groups = Uint8Array.from(Array.from({ length: budget + 1 }, () => [0xfb, 0x01, 0xfc, 0x01]).flat()); // empty groups, field 31
      expect(exceedsFieldBudget(GetRequestSchema, groups, budget)).toBe(true);
    }
  });

  it("reads a declared scalar sent length-delimited as the decoder does: its \"payload\" is more fields, and they count", () => {
    const varint = (n: number) => {
      const out: number[] = [];
      for (; n > 0x7f; n >>>= 7) out.push((n & 0x7f) | 0x80);
      out.push(n);
      return out;
    };
    const unknown = Array.from({ length: 5_000 }, () => [0x78, 0x00]).flat(); // field 15, varint 0
    const touch = Uint8Array.from([0x1a, ...varint(unknown.length), ...unknown]); // TouchRequest.ttl_ms (3, int64) as wire type 2
    expect(exceedsFieldBudget(TouchRequestSchema, touch, 1_000)).toBe(true);
    const entry = [0x22, ...varint(unknown.length), ...unknown]; // Entry.ttl_ms (4, int64) as wire type 2
    const setMany = Uint8Array.from([0x12, ...varint(entry.length), ...entry]);
    expect(exceedsFieldBudget(SetManyRequestSchema, setMany, 1_000)).toBe(true);
  });

  it("walks a nested message as the decoder does: past a stated end beyond the buffer, and on from where its last field ended", () => {
    const v5 = (n: number) => [(n & 0x7f) | 0x80, ((n >>> 7) & 0x7f) | 0x80, ((n >>> 14) & 0x7f) | 0x80, ((n >>> 21) & 0x7f) | 0x80, (n >>> 28) & 0x0f]; // padded varint
    const emptyTags = Array.from({ length: 5_000 }, () => [0x32, 0x00]).flat(); // Entry.tags (6), empty
    const pastTheEnd = Uint8Array.from([0x12, ...v5(0x7ffffff0), ...emptyTags]); // one entry whose length runs far past the request
    expect(exceedsFieldBudget(SetManyRequestSchema, pastTheEnd, 1_000)).toBe(true);
    const emptyEntries = Array.from({ length: 5_000 }, () => [0x12, 0x00]).flat();
    // An entry stated 2 bytes long holds only the header of its value (field 2, 6 bytes): the decoder reads that value over the
    // entry's end, then goes on with 5,000 empty entries, which a scan that jumped to the stated end read as one unknown field.
    const outOfStep = Uint8Array.from([0x12, 0x02, 0x12, 0x06, 0x7a, ...v5(emptyEntries.length), ...emptyEntries]);
    expect(exceedsFieldBudget(SetManyRequestSchema, outOfStep, 1_000)).toBe(true);
  });
});
