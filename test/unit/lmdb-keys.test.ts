import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../core/errors.js";
import { expiredBefore, expiryKey, namespaceRange, parseExpiryKey, valueKey } from "../../server/tiers/lmdb-keys.js";

const namespaceArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
/** Namespaces that are often prefixes of one another. */
const nearNamespaceArb = fc.string({ unit: fc.constantFrom("a", ".", "-", "_", "0"), minLength: 1, maxLength: 5 }).map((s) => `a${s}`.slice(0, 64));
const keyArb = fc.oneof(
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.string({ unit: fc.constantFrom("\u0000", "\u0001", "\u0004", "\u001b", "a", "😀"), maxLength: 70 }),
);
const expiresAtArb = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER - 1 });

describe("the LMDB tier's keys", () => {
  it("are the namespace's UTF-8, 0x00, then the key's UTF-8, byte for byte", () => {
    fc.assert(
      fc.property(namespaceArb, keyArb, (namespace, key) => {
        expect(valueKey(namespace, key)).toEqual(Buffer.concat([Buffer.from(namespace), Buffer.from([0]), Buffer.from(key)]));
      }),
    );
  });

  it("are one-to-one: different (namespace, key) pairs never share a record", () => {
    fc.assert(
      fc.property(fc.oneof(namespaceArb, nearNamespaceArb), keyArb, fc.oneof(namespaceArb, nearNamespaceArb), keyArb, (ns1, k1, ns2, k2) => {
        const same = ns1 === ns2 && k1 === k2;
        expect(valueKey(ns1, k1).equals(valueKey(ns2, k2))).toBe(same);
      }),
    );
    expect(valueKey("ns", "\u0000".repeat(32)).equals(valueKey("ns", "\u0004\u0000".repeat(32)))).toBe(false);
  });

  it("fall in their own namespace's range and in no other's, even one it is a prefix of", () => {
    fc.assert(
      fc.property(nearNamespaceArb, nearNamespaceArb, keyArb, (ns, other, key) => {
        const { start, end } = namespaceRange(ns);
        const id = valueKey(other, key);
        const inside = Buffer.compare(start, id) <= 0 && Buffer.compare(id, end) < 0;
        expect(inside).toBe(ns === other);
      }),
    );
  });

  it("index expiry in time order, and the sweep bound takes exactly the keys expired at `now`", () => {
    fc.assert(
      fc.property(expiresAtArb, expiresAtArb, keyArb, keyArb, (t1, t2, k1, k2) => {
        const a = expiryKey(t1, valueKey("ns", k1));
        const b = expiryKey(t2, valueKey("ns", k2));
        if (t1 !== t2) expect(Math.sign(Buffer.compare(a, b))).toBe(Math.sign(t1 - t2));
        expect(parseExpiryKey(a)).toEqual({ expiresAt: t1, value: valueKey("ns", k1) });
        expect(Buffer.compare(a, expiredBefore(t1))).toBe(-1);
        expect(Buffer.compare(a, expiredBefore(t1 - 1))).toBe(1);
      }),
    );
  });

  it("refuse what they could not keep apart: a lone surrogate in a key, U+0000 in a namespace", () => {
    expect(() => valueKey("ns", "a\uD800")).toThrow(InvalidArgumentError);
    expect(() => valueKey("ns", "\uDC00")).toThrow(InvalidArgumentError);
    expect(() => valueKey("n\u0000s", "k")).toThrow(InvalidArgumentError);
    expect(valueKey("ns", "😀").toString("hex")).toBe("6e7300f09f9880");
  });
});
