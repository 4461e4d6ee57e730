/**
 * (6) Hit ratio of each eviction policy and of lru-cache (issue 3): Zipf
 * 0.8 and 1.0 over 1M keys, and Zipf 0.9 polluted by one-pass scans; cache
 * capacity 10k entries (1% of the key space). Printed as its own table.
 */
import { startChild } from "../lib/child.js";

const NAME = "hit-ratio";

export default {
  name: NAME,
  description: "hit ratio per policy vs lru-cache on Zipf 0.8 / 1.0 and a scan-polluted Zipf 0.9 trace (separate table)",
  async run(ctx) {
    const length = ctx.quick ? 20_000 : 2_000_000;
    const capacity = 10_000;
    const keySpace = 1_000_000;
    const traces = [
      { name: `Zipf 0.8, ${keySpace / 1e6}M keys`, skew: 0.8, length, seed: 8 },
      { name: `Zipf 1.0, ${keySpace / 1e6}M keys`, skew: 1.0, length, seed: 10 },
      { name: `Zipf 0.9 + scans (100k requests, then a ${(2 * capacity) / 1000}k-key one-pass scan, repeated)`, skew: 0.9, length, seed: 9, scan: { every: 100_000, length: 2 * capacity } },
    ];
    const child = await startChild("hit-ratio", {}, { execArgv: ["--max-old-space-size=4096"] });
    let result;
    try {
      result = await child.call("run", { traces, capacity, keySpace, warmupFraction: 0.1 });
    } finally {
      await child.stop();
    }
    for (const row of result.rows) ctx.log(`  ${row.trace}: ${Object.entries(row.hitRatio).map(([k, v]) => `${k} ${(v * 100).toFixed(2)}%`).join(", ")} (${row.seconds.toFixed(1)} s)`);
    const n = length >= 1e6 ? `${length / 1e6}M` : `${length / 1e3}k`;
    return {
      rows: [],
      table: {
        title: `Hit ratio (issue 3): capacity ${capacity / 1000}k entries, ${n} requests per trace, first 10% not counted; a miss is followed by a set`,
        columns: result.columns,
        rows: result.rows,
      },
    };
  },
};
