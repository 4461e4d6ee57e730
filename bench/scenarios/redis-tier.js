/**
 * Redis tier wrapper (pending the Redis tier): RedisTier.get (guarded call:
 * breaker, retry, timeout, envelope) against raw ioredis getBuffer of the
 * same 1 KiB values, in one process, sequential latency and 50 in flight.
 */
import { startChild } from "../lib/child.js";
import { measured, unavailable } from "../lib/report.js";
import { roundOrder } from "../lib/rounds.js";
import { fmt, median, us } from "../lib/stats.js";

const NAME = "redis-tier";

export default {
  name: NAME,
  description: "RedisTier.get vs raw ioredis getBuffer (subject measured once RedisTier exists)",
  async run(ctx) {
    const subject = "RedisTier.get";
    const baseline = "ioredis getBuffer";
    const redis = await ctx.redis();
    if (!redis) return { rows: [unavailable({ scenario: NAME, subject, baseline, reason: "no redis-server on PATH" })] };
    const load = await startChild("redis-load", { url: redis.url });
    try {
      await load.call("preload", { count: ctx.quick ? 1000 : 10_000 });
      const hasTier = await load.call("openTier");
      const vias = hasTier ? ["raw", "tier"] : ["raw"];
      const q = ctx.quick;
      const phase = (durationMs, calls) => (q ? { durationMs: 60_000, maxCalls: calls } : { durationMs });
      for (const via of vias) await load.call("get", { via, concurrency: 50, ...phase(1500, 100) });
      const results = Object.fromEntries(vias.map((v) => [v, []]));
      for (let round = 0; round < ctx.rounds; round++) {
        for (const via of roundOrder(round, vias)) {
          const seq = await load.call("get", { via, concurrency: 1, ...phase(700, 50) });
          const c50 = await load.call("get", { via, concurrency: 50, ...phase(700, 100) });
          results[via].push({ p50: seq.p50, p99: seq.p99, ops: c50.opsPerSec });
        }
        ctx.log(`  round ${round + 1}: ${vias.map((v) => `${v} p50 ${us(results[v].at(-1).p50)}, 50 in flight ${fmt(results[v].at(-1).ops)}/s`).join(" | ")}`);
      }
      const med = (v, k) => median(results[v].map((r) => r[k]));
      const metrics = [
        ["p50, sequential", "p50", us],
        ["p99, sequential", "p99", us],
        ["throughput, 50 in flight", "ops", (v) => `${fmt(v)} ops/s`],
      ];
      return {
        rows: metrics.map(([label, k, f]) =>
          hasTier
            ? measured({ scenario: NAME, subject: `${subject}: ${label}`, baseline, ratios: results.tier.map((r, i) => r[k] / results.raw[i][k]), context: `${f(med("tier", k))} vs ${f(med("raw", k))}` })
            : unavailable({ scenario: NAME, subject: `${subject}: ${label}`, baseline, context: `baseline ${f(med("raw", k))}` }),
        ),
      };
    } finally {
      await load.stop();
    }
  },
};
