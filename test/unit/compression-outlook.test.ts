import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { CompressionOutlook } from "../../core/compression-outlook.js";

describe("CompressionOutlook", () => {
  it("skips a content type after 4 misses, tries again after 16, and doubles the skip on each further miss", () => {
    const outlook = new CompressionOutlook();
    const tries: boolean[] = [];
    for (let i = 0; i < 4 + 16 + 1 + 32 + 1; i++) {
      const attempt = outlook.shouldTry("image/png");
      tries.push(attempt);
      if (attempt) outlook.record("image/png", false);
    }
    const attempts = tries.flatMap((t, i) => (t ? [i] : []));
    expect(attempts).toEqual([0, 1, 2, 3, 20, 53]);
    expect(outlook.skipped).toBe(48);
  });

  it("remembers at most 64 content types: a caller inventing content types cannot grow it", () => {
    const outlook = new CompressionOutlook();
    for (let i = 0; i < 4; i++) outlook.record("first", false);
    expect(outlook.shouldTry("first")).toBe(false);
    for (let t = 0; t < 10_000; t++) for (let i = 0; i < 4; i++) outlook.record(`type-${t}`, false);
    expect(outlook.shouldTry("first")).toBe(true); // forgotten when the table filled up
    expect(outlook.shouldTry("type-9999")).toBe(false); // the newest are still remembered
  });

  it("keeps each content type apart, and one saving resets it", () => {
    const outlook = new CompressionOutlook();
    for (let i = 0; i < 4; i++) outlook.record("a", false);
    expect(outlook.shouldTry("a")).toBe(false);
    expect(outlook.shouldTry("b")).toBe(true);
    outlook.record("a", true);
    expect(outlook.shouldTry("a")).toBe(true);
  });
});

describe("ValueCodec with incompressible values", () => {
  it("stops trying to compress a content type whose values never shrink, and still round-trips them", () => {
    const codec = new ValueCodec({ compressionThreshold: 64 });
    const values = Array.from({ length: 50 }, () => randomBytes(2048));
    for (const value of values) {
      const envelope = codec.encode(value, "application/octet-stream", 0);
      expect(Buffer.from(codec.decode(envelope).value).equals(value)).toBe(true);
    }
    expect(codec.stats.compressed).toBe(0);
    expect(codec.stats.compressionSkipped).toBeGreaterThanOrEqual(40);
    const json = Buffer.from(JSON.stringify({ text: "compressible ".repeat(200) }));
    expect(codec.decode(codec.encode(json, "application/json", 0)).compressed).toBe(true);
  });
});
