import { describe, expect, it } from "vitest";
import { randomToken } from "../../server/engine/random-token.js";

describe("randomToken", () => {
  it("gives 16 base64url characters (96 bits), never the same one twice across many pool refills", () => {
    const tokens = Array.from({ length: 5_000 }, () => randomToken());
    for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it("never hands out a byte twice: no token begins with the end of the one before", () => {
    const bytes = Array.from({ length: 1_000 }, () => Buffer.from(randomToken(), "base64url"));
    for (let i = 1; i < bytes.length; i++) {
      for (let shared = 4; shared < 12; shared++) {
        expect(bytes[i]!.subarray(0, shared).equals(bytes[i - 1]!.subarray(12 - shared))).toBe(false);
      }
    }
  });
});
