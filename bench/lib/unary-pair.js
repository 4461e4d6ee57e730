/**
 * The unary measurement shared by the service scenarios: per round, each
 * target (a server child plus the load child's target name) is measured in
 * interleaved slices (A B B A for two targets; for more, every order of a
 * rotation) at 1, 10 and 100 calls in flight; server CPU is read around the
 * 100-in-flight slices.
 */
import { measured } from "./report.js";
import { cpuMicros, slicedPair } from "./rounds.js";
import { fmt, median, us } from "./stats.js";

/**
 * Per target, one entry per round: { seq, c10, c100 } as slicedPair gives
 * them, cpuPerCall (server CPU, µs, at 100 in flight) and loadCpuPerCall (the
 * load process's, at 100 in flight). With `seqCpu`, server CPU is
 * read around the sequential slices too (`seq.cpuPerCall`).
 */
export async function measureUnary(ctx, load, servers, targets, { seqCpu = false } = {}) {
  const q = ctx.quick;
  const phase = (durationMs, quickCalls) => (q ? { durationMs: 60_000, maxCalls: quickCalls } : { durationMs });
  for (const target of targets) {
    ctx.log(`  warm-up ${target}`);
    await load.call("unary", { target, concurrency: 100, ...phase(2000, 50) });
    await load.call("unary", { target, concurrency: 1, ...phase(1000, 20) });
  }
  const results = Object.fromEntries(targets.map((t) => [t, []]));
  // Two targets: A B B A. More: every order of slicedPair's rotation, so each target runs in each place equally
  // often and a steady drift cancels; the slices are shortened to keep the time per target that four slices take.
  const slices = q ? 1 : targets.length > 2 ? 2 * targets.length : 4;
  const scale = q ? 1 : 4 / slices;
  const measure = (concurrency, sliceMs, quickCalls, withCpu) =>
    slicedPair(targets, slices, async (target) => {
      const c0 = withCpu ? await servers[target].call("cpu") : undefined;
      const r = await load.call("unary", { target, concurrency, samples: true, ...phase(Math.round(sliceMs * scale), quickCalls) });
      if (withCpu) r.cpuMicros = cpuMicros(c0, await servers[target].call("cpu"));
      return r;
    });
  for (let round = 0; round < ctx.rounds; round++) {
    const seq = await measure(1, 300, 30, seqCpu);
    const c10 = await measure(10, 250, 60, false);
    const c100 = await measure(100, 400, 100, true);
    for (const target of targets) results[target].push({ seq: seq[target], c10: c10[target], c100: c100[target], cpuPerCall: c100[target].cpuPerCall, loadCpuPerCall: c100[target].loadCpuPerCall });
    ctx.log(
      `  round ${round + 1}: ${targets
        .map((t) => {
          const r = results[t].at(-1);
          return `${t}: p50 ${us(r.seq.p50)} p99 ${us(r.seq.p99)}, c10 p99 ${us(r.c10.p99)}, c100 ${fmt(r.c100.opsPerSec)}/s, cpu ${r.cpuPerCall.toFixed(0)} µs (load ${r.loadCpuPerCall.toFixed(0)} µs)`;
        })
        .join(" | ")}`,
    );
  }
  return results;
}

/**
 * Information rows for the least server on tiercache's stack ("stack-min" in
 * `results`): for each `[label, pick, format]` of `metrics`, it against the
 * echo ("echo"), then tiercache ("tc") against it.
 */
export function leastServerRows({ scenario, subject, baseline, leastServer, results, metrics }) {
  const ratio = (a, b, pick) => results[a].map((t, i) => pick(t) / pick(results[b][i]));
  const med = (target, pick) => median(results[target].map(pick));
  return metrics.flatMap(([label, pick, f]) => [
    measured({ scenario, subject: `${leastServer}: ${label}`, baseline, ratios: ratio("stack-min", "echo", pick), context: `${f(med("stack-min", pick))} vs ${f(med("echo", pick))}; through CacheClient, as tiercache: what the stack itself allows` }),
    measured({ scenario, subject: `${subject}: ${label}`, baseline: leastServer, ratios: ratio("tc", "stack-min", pick), context: `${f(med("tc", pick))} vs ${f(med("stack-min", pick))}; what tiercache's features take beyond it` }),
  ]);
}
