import { describe, expect, it } from "vitest";
import { CountMinSketch } from "../../core/eviction/count-min-sketch.js";
import { Doorkeeper } from "../../core/eviction/doorkeeper.js";
import { FrequencySketch, SAMPLE_SIZE_PER_ENTRY } from "../../core/eviction/frequency-sketch.js";
import { hashString } from "../../core/eviction/hash.js";

const hashes = (count: number, prefix = "key"): number[] => Array.from({ length: count }, (_, i) => hashString(`${prefix}${i}`));

describe("CountMinSketch", () => {
  it("never underestimates below saturation, saturates at 15 and halves on demand", () => {
    const sketch = new CountMinSketch(64);
    const keys = hashes(64);
    keys.forEach((hash, i) => {
      for (let n = 0; n < i % 16; n++) sketch.increment(hash);
    });
    keys.forEach((hash, i) => expect(sketch.frequency(hash)).toBeGreaterThanOrEqual(i % 16));
    const hot = hashString("hot");
    for (let n = 0; n < 20; n++) sketch.increment(hot);
    expect(sketch.frequency(hot)).toBe(15);
    expect(sketch.increment(hot)).toBe(false);
    sketch.halve();
    expect(sketch.frequency(hot)).toBe(7);
    keys.forEach((hash, i) => expect(sketch.frequency(hash)).toBeGreaterThanOrEqual(Math.floor((i % 16) / 2)));
  });

  it("keeps estimates close for keys it was sized for", () => {
    const sketch = new CountMinSketch(1_000);
    const keys = hashes(1_000);
    for (const hash of keys) sketch.increment(hash);
    const overestimated = keys.filter((hash) => sketch.frequency(hash) > 1).length;
    expect(overestimated).toBeLessThan(50);
  });
});

describe("Doorkeeper", () => {
  it("remembers every key added until cleared, with few false positives", () => {
    const doorkeeper = new Doorkeeper(1_000);
    const keys = hashes(1_000);
    const seenBefore = keys.filter((hash) => doorkeeper.add(hash)).length;
    expect(seenBefore).toBeLessThan(50);
    for (const hash of keys) expect(doorkeeper.has(hash)).toBe(true);
    expect(doorkeeper.add(keys[0] as number)).toBe(true);
    const strangers = hashes(10_000, "other").filter((hash) => doorkeeper.has(hash)).length;
    expect(strangers).toBeLessThan(1_000);
    doorkeeper.clear();
    expect(keys.some((hash) => doorkeeper.has(hash))).toBe(false);
  });

  it("forgets everything once it holds one key per 4 bits, so a scan cannot saturate it", () => {
    const doorkeeper = new Doorkeeper(1); // the smallest filter: 16,384 bits, room for 4,096 keys
    const first = hashes(2_000, "first");
    const later = hashes(3_000, "later");
    for (const hash of first) doorkeeper.add(hash);
    expect(first.every((hash) => doorkeeper.has(hash))).toBe(true);
    for (const hash of later) doorkeeper.add(hash); // passes 4,096 keys: the filter starts over
    expect(first.filter((hash) => doorkeeper.has(hash)).length).toBeLessThan(200);
    expect(later.slice(-500).every((hash) => doorkeeper.has(hash))).toBe(true);
  });
});

describe("FrequencySketch", () => {
  it("counts a key's first occurrence in the doorkeeper only, and later ones in the sketch", () => {
    const sketch = new FrequencySketch(100);
    const key = hashString("k");
    expect(sketch.frequency(key)).toBe(0);
    sketch.increment(key);
    expect(sketch.frequency(key)).toBe(0);
    sketch.increment(key);
    expect(sketch.frequency(key)).toBe(1);
    for (let n = 0; n < 20; n++) sketch.increment(key);
    expect(sketch.frequency(key)).toBe(15);
  });

  it("counts a held key's hits straight into the sketch", () => {
    const sketch = new FrequencySketch(100);
    const key = hashString("held");
    sketch.incrementHeld(key);
    sketch.incrementHeld(key);
    expect(sketch.frequency(key)).toBe(2);
  });

  it("ages after sampleSize additions: counts halve and the doorkeeper forgets", () => {
    const sketch = new FrequencySketch(100);
    expect(sketch.sampleSize).toBe(SAMPLE_SIZE_PER_ENTRY * 100);
    const hot = hashString("hot");
    for (let n = 0; n < 11; n++) sketch.increment(hot); // doorkeeper + 10 in the sketch
    expect(sketch.frequency(hot)).toBe(10);
    for (const hash of hashes(sketch.sampleSize, "other")) sketch.increment(hash);
    expect(sketch.frequency(hot)).toBe(5);
    sketch.increment(hot); // the doorkeeper forgot "hot": this occurrence only enters it again
    expect(sketch.frequency(hot)).toBe(5);
  });
});
