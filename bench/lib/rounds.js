/** Interleaving helpers: baseline and subject are measured close together in time, in alternating order. */
import { latencySummary } from "./stats.js";

/** Every round runs each target once; the order rotates (and reverses) from round to round. */
export function roundOrder(round, targets) {
  const shift = round % targets.length;
  const rotated = [...targets.slice(shift), ...targets.slice(0, shift)];
  return round % 2 === 1 ? rotated.reverse() : rotated;
}

/** CPU µs (user + system) between two process.cpuUsage() readings. */
export function cpuMicros(before, after) {
  return after.user - before.user + (after.system - before.system);
}

/**
 * One measurement of each target made of `slices` short slices in ABBA
 * order (A B B A A B …; with more than two targets, in the orders of
 * {@link roundOrder}), so slow drifts of the machine hit all alike.
 * `runSlice(target)` resolves to `{ calls, elapsedMs, samples?, cpuMicros?, loadCpuMicros? }`;
 * returns per target: calls, opsPerSec, p50/p99 over all samples, CPU per call
 * of the server (`cpuPerCall`) and of the load process (`loadCpuPerCall`).
 */
export async function slicedPair(targets, slices, runSlice) {
  const acc = Object.fromEntries(targets.map((t) => [t, { calls: 0, elapsedMs: 0, cpu: 0, loadCpu: 0, samples: [] }]));
  for (let s = 0; s < slices; s++) {
    // Two targets: A B B A …; more: rotated and reversed in turn, so that no target always runs between the others.
    const order = targets.length > 2 ? roundOrder(s, targets) : s % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) {
      const r = await runSlice(target);
      const a = acc[target];
      a.calls += r.calls;
      a.elapsedMs += r.elapsedMs;
      a.cpu += r.cpuMicros ?? 0;
      a.loadCpu += r.loadCpuMicros ?? 0;
      if (r.samples) a.samples.push(r.samples);
    }
  }
  return Object.fromEntries(
    targets.map((t) => {
      const a = acc[t];
      const all = new Float64Array(a.samples.reduce((n, s) => n + s.length, 0));
      let offset = 0;
      for (const s of a.samples) {
        all.set(s, offset);
        offset += s.length;
      }
      const { p50, p99 } = all.length > 0 ? latencySummary(all) : { p50: NaN, p99: NaN };
      return [t, { calls: a.calls, opsPerSec: (a.calls / a.elapsedMs) * 1000, msPerOp: a.elapsedMs / a.calls, p50, p99, cpuPerCall: a.cpu / a.calls, loadCpuPerCall: a.loadCpu / a.calls }];
    }),
  );
}
