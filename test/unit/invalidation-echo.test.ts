import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { encodeMessage, isFrom, parseMessage, type ChannelMessage } from "../../server/tiers/invalidation-protocol.js";

const message = (from: string, bye = false): ChannelMessage => ({
  v: 1,
  from,
  seq: 3,
  changes: [{ kind: "set", namespace: "n", keys: ["a", "b"] }],
  hb: 500,
  settle: 2000,
  ...(bye && { bye: true as const }),
});

describe("isFrom: telling an instance's own messages without parsing them", () => {
  it("agrees with the parsed sender, whatever the ids", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", minLength: 1 }), fc.string({ unit: "binary", minLength: 1 }), fc.boolean(), (sender, other, bye) => {
        const text = encodeMessage(message(sender, bye));
        expect(parseMessage(text)?.from).toBe(sender);
        expect(isFrom(text, sender)).toBe(true);
        expect(isFrom(text, other)).toBe(other === sender);
      }),
    );
  });

  it("does not take a sender whose id merely starts with this one's", () => {
    expect(isFrom(encodeMessage(message("abc")), "ab")).toBe(false);
    expect(isFrom(encodeMessage(message("ab")), "abc")).toBe(false);
  });
});
