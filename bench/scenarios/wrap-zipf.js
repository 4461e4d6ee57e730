/**
 * Function-result caching on a Zipf(0.99) trace (pending the client's
 * `wrap`): bentocache getOrSet with a memory L1 (10k items) over the run's
 * own Redis as L2, sequential calls, 100k keys. Reports ops/s and how
 * often the loader ran.
 */
import { importDist } from "../lib/paths.js";
import { startChild } from "../lib/child.js";
import { unavailable } from "../lib/report.js";
import { fmt, median } from "../lib/stats.js";

const NAME = "wrap-zipf";

export default {
  name: NAME,
  description: "client wrap() on Zipf(0.99) vs bentocache getOrSet, memory L1 over Redis L2 (subject pending)",
  async run(ctx) {
    const subject = "CacheClient wrap, Zipf(0.99)";
    const baseline = "bentocache getOrSet (L1 memory + L2 Redis)";
    const redis = await ctx.redis();
    if (!redis) return { rows: [unavailable({ scenario: NAME, subject, baseline, reason: "no redis-server on PATH" })] };
    const child = await startChild("redis-load", { url: redis.url });
    const runs = [];
    try {
      for (let round = 0; round < (ctx.quick ? 1 : 3); round++) {
        // A fresh key prefix per round: every round starts with empty L1 and L2.
        runs.push(await child.call("bento", { requests: ctx.quick ? 500 : 100_000, keySpace: 100_000, skew: 0.99, l1Items: 10_000, prefix: `bento${Date.now()}r${round}` }));
        ctx.log(`  round ${round + 1}: ${fmt(runs.at(-1).opsPerSec)} ops/s, loader ran ${runs.at(-1).loads} times`);
      }
    } finally {
      await child.stop();
    }
    const { CacheClient } = await importDist("client/index.js");
    // The client's wrap is still being written: its subject is added once it has landed.
    const note = typeof CacheClient.prototype.wrap === "function" ? " (wrap is in the build, subject not measured yet)" : "";
    const ops = median(runs.map((r) => r.opsPerSec));
    const loads = median(runs.map((r) => r.loads / r.requests));
    return { rows: [unavailable({ scenario: NAME, subject, baseline, context: `baseline ${fmt(ops)} ops/s, loader ran for ${(loads * 100).toFixed(1)}% of calls${note}` })] };
  },
};
