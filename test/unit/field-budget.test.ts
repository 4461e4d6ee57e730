import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { create, toBinary } from "@bufbuild/protobuf";
import { LeaseSessionRequestSchema, SetManyRequestSchema, WatchRequestSchema } from "../../gen/tiercache/v1/cache_pb.js";
import { exceedsFieldBudget } from "../../core/wire/field-budget.js";

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
});
