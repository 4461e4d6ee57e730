/** Small statistics helpers shared by the harness and its children. */

/** Median of a list of numbers (NaN when empty). */
export function median(values) {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The q-quantile (0..1) of an already sorted Float64Array or array, nearest-rank. */
export function quantileSorted(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

/** p50 / p99 of latency samples (any unit). */
export function latencySummary(samples, count = samples.length) {
  const sorted = Float64Array.from(samples.subarray ? samples.subarray(0, count) : samples.slice(0, count)).sort();
  return { count, p50: quantileSorted(sorted, 0.5), p99: quantileSorted(sorted, 0.99) };
}

/** Median, min and max of per-round ratios. */
export function ratioSummary(ratios) {
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), rounds: ratios };
}

/** Formats a number with a fixed number of significant-ish digits. */
export function fmt(value, digits = 2) {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toFixed(digits)}G`;
  if (abs >= 1e6) return `${(value / 1e6).toFixed(digits)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(digits);
}

/** Formats microseconds. */
export function us(value) {
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} ms` : `${value.toFixed(value >= 100 ? 0 : 1)} µs`;
}
