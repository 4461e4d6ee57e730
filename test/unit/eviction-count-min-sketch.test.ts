import { describe, expect, it } from "vitest";
import { CountMinSketch, hashString } from "../../core/eviction/count-min-sketch.js";

describe("CountMinSketch", () => {
  it("never underestimates below saturation and ages by halving", () => {
    const sketch = new CountMinSketch(64);
    const keys = Array.from({ length: 64 }, (_, i) => hashString(`key${i}`));
    keys.forEach((hash, i) => {
      for (let n = 0; n < i % 16; n++) sketch.increment(hash);
    });
    keys.forEach((hash, i) => expect(sketch.frequency(hash)).toBeGreaterThanOrEqual(Math.min(i % 16, 15)));
    const hot = hashString("hot");
    for (let n = 0; n < 20; n++) sketch.increment(hot);
    expect(sketch.frequency(hot)).toBe(15);
    const other = hashString("other");
    for (let n = 0; n < sketch.sampleSize; n++) sketch.increment(other + n * 7919);
    expect(sketch.frequency(hot)).toBeLessThanOrEqual(7);
  });
});
