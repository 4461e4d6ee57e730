import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { asciiText } from "../../core/wire/ascii-text.js";

/** Bytes of short and long strings, ASCII mostly, sometimes with a byte over 0x7f somewhere. */
const bytes = fc.oneof(
  fc.uint8Array({ min: 0, max: 0x7f, maxLength: 80 }),
  fc.uint8Array({ maxLength: 80 }),
  fc.constantFrom(..."application/json,application/octet-stream,default,k,".split(",")).map((s) => new TextEncoder().encode(s)),
);

describe("asciiText", () => {
  it("is the bytes as text when they are all ASCII, else undefined, wherever they sit in the buffer and however often they were seen", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(bytes, fc.nat(8), fc.nat(8)), { minLength: 1, maxLength: 30 }), fc.array(fc.nat(), { maxLength: 60 }), (items, order) => {
        const framed = items.map(([b, before, after]) => ({ buf: Buffer.concat([Buffer.alloc(before, 0xff), b, Buffer.alloc(after, 0x41)]), start: before, end: before + b.length, b }));
        for (const i of [...framed.keys(), ...order.map((n) => n % framed.length)]) {
          const { buf, start, end, b } = framed[i]!;
          const expected = b.every((c) => c < 0x80) ? Buffer.from(b).toString("latin1") : undefined;
          expect(asciiText(buf, start, end)).toBe(expected);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("tells apart strings that share a slot of its table", () => {
    const texts = Array.from({ length: 5000 }, (_, i) => `k${i.toString(36)}`);
    for (let round = 0; round < 3; round++)
      for (const text of texts) {
        const buf = Buffer.from(text, "latin1");
        expect(asciiText(buf, 0, buf.length)).toBe(text);
      }
  });

  it("tells apart different strings of the same length and hash", () => {
    // the hash asciiText keys its table with (a copy: if it changes, this finds collisions of the old one and says nothing)
    const hashOf = (text: string) => {
      let hash = text.length;
      for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
      return hash;
    };
    const seen = new Map<number, string>();
    let pair: [string, string] | undefined;
    for (let i = 0; pair === undefined && i < 2_000_000; i++) {
      const text = `k${i.toString(36).padStart(6, "0")}`;
      const other = seen.get(hashOf(text));
      if (other !== undefined) pair = [other, text];
      else seen.set(hashOf(text), text);
    }
    expect(pair).toBeDefined();
    for (const text of [...pair!, ...pair!, pair![1], pair![0]]) {
      const buf = Buffer.from(text, "latin1");
      expect(asciiText(buf, 0, buf.length)).toBe(text);
    }
  });
});
