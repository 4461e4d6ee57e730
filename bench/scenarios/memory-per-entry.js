/**
 * (4) Memory per entry: heap (+ external) after GC, divided by entries, for
 * 1M entries in MemoryTier (lru, and the adaptive W-TinyLFU) vs lru-cache
 * (and a plain Map for reference). Keys are built before the measurement and one value object is
 * shared, so only the cache's own structures count. Fresh process per
 * measurement, rounds alternate.
 */
import { startChild } from "../lib/child.js";
import { measured } from "../lib/report.js";
import { roundOrder } from "../lib/rounds.js";
import { median } from "../lib/stats.js";

const NAME = "memory-per-entry";

async function measure(impl, entries, policy) {
  const child = await startChild("heap", {}, { execArgv: ["--expose-gc", "--max-old-space-size=4096"], label: `heap-${impl}` });
  try {
    return await child.call("measure", { impl, entries, policy });
  } finally {
    await child.stop();
  }
}

export default {
  name: NAME,
  description: "bytes per entry after GC, 1M entries: MemoryTier (lru) vs lru-cache",
  async run(ctx) {
    const entries = ctx.quick ? 10_000 : 1_000_000;
    const rounds = ctx.quick ? 1 : 3;
    const impls = ["tier", "lru-cache", "map", "tier-tinylfu"];
    const results = Object.fromEntries(impls.map((i) => [i, []]));
    for (let round = 0; round < rounds; round++) {
      for (const impl of roundOrder(round, impls)) {
        const r = impl === "tier-tinylfu" ? await measure("tier", entries, "tinylfu") : await measure(impl, entries);
        results[impl].push(r.bytesPerEntry);
      }
      ctx.log(`  round ${round + 1}: ${impls.map((i) => `${i} ${results[i].at(-1).toFixed(1)} B`).join(", ")}`);
    }
    const b = (i) => `${median(results[i]).toFixed(1)} B`;
    const n = entries >= 1e6 ? `${entries / 1e6}M` : `${entries / 1e3}k`;
    return {
      rows: [
        measured({ scenario: NAME, subject: `MemoryTier(lru), ${n} entries`, baseline: "lru-cache", ratios: results.tier.map((v, i) => v / results["lru-cache"][i]), goal: { op: "<=", value: 1.0 }, context: `${b("tier")} vs ${b("lru-cache")} per entry (plain Map ${b("map")})` }),
        measured({ scenario: NAME, subject: `MemoryTier(tinylfu), ${n} entries`, baseline: "lru-cache", ratios: results["tier-tinylfu"].map((v, i) => v / results["lru-cache"][i]), goal: { op: "<=", value: 1.1 }, context: `${b("tier-tinylfu")} vs ${b("lru-cache")} per entry` }),
      ],
    };
  },
};
