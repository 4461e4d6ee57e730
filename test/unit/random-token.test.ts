import { describe, expect, it } from "vitest";
import { randomToken } from "../../server/engine/random-token.js";

describe("randomToken", () => {
  it("gives 16 base64url characters (96 bits), never the same one twice across many pool refills", () => {
    const tokens = Array.from({ length: 5_000 }, () => randomToken());
    for (const token of tokens) expect(token).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(new Set(tokens).size).toBe(tokens.length);
  });
});
