/** Deterministic pseudo-random numbers and traces (same seed, same sequence, on every machine). */

/** mulberry32: a fast 32-bit PRNG; returns a function giving floats in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded Fisher–Yates permutation of 0..n-1. */
export function permutation(n, random) {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}

/**
 * A Zipf(skew) sampler over ranks 0..n-1 (rank 0 most popular), by inverse
 * CDF with binary search. Returns a function giving one rank per call.
 */
export function zipfSampler(n, skew, random) {
  const cdf = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += 1 / Math.pow(i + 1, skew);
    cdf[i] = total;
  }
  return function sample() {
    const u = random() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** Random bytes from a seeded PRNG (incompressible-ish, deterministic). */
export function randomBytes(length, random) {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** A deterministic JSON document of about `targetBytes` bytes (an array of realistic records). */
export function jsonDocument(targetBytes, random) {
  const words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"];
  const records = [];
  let size = 2;
  for (let id = 1; size < targetBytes; id++) {
    const record = {
      id,
      name: `${words[Math.floor(random() * words.length)]} ${words[Math.floor(random() * words.length)]}`,
      email: `user${Math.floor(random() * 100000)}@example.com`,
      active: random() < 0.7,
      score: Math.round(random() * 100000) / 100,
      createdAt: new Date(1_700_000_000_000 + Math.floor(random() * 3e10)).toISOString(),
      tags: words.filter(() => random() < 0.2),
    };
    records.push(record);
    size += JSON.stringify(record).length + 1;
  }
  let text = JSON.stringify(records);
  while (text.length > targetBytes) {
    records.pop();
    text = JSON.stringify(records);
  }
  // Pad to the exact size with a trailing field so every run measures the same bytes.
  const padded = text.slice(0, -1) + `,${JSON.stringify("x".repeat(Math.max(0, targetBytes - text.length - 3)))}]`;
  return Buffer.from(padded.length === targetBytes ? padded : text, "utf8");
}
