/**
 * (6) Hit ratio of each eviction policy and of lru-cache. Two tables:
 * synthetic traces (issue 3): Zipf 0.8 and 1.0 over 1M keys, and Zipf 0.9
 * polluted by one-pass scans, cache capacity 10k entries (1% of the key
 * space); and the real public traces of ../shared/traces (issue 14), at
 * every size listed in its reference_hit_ratios.csv, beside the published
 * and computed figures of that file. The real-trace table is skipped, with
 * a note, when the traces or the `xz` command are missing.
 */
import { startChild } from "../lib/child.js";
import { decompressTraces, readReferences, tracesAvailable, TRACES_DIR } from "../lib/traces.js";

const NAME = "hit-ratio";

/** Issue 14's goals for the adaptive W-TinyLFU ("tinylfu"), in percent. */
const GOALS = [
  { trace: "OLTP.lis", size: 1000, atLeast: 40.0 },
  { trace: "OLTP.lis", size: 2000, atLeast: 46.0 },
  { trace: "lirs/gli.trace", size: 1024, atLeast: 51 },
  { trace: "lirs/loop.trace", size: 512, atLeast: 48 },
  { trace: "lirs/multi2.trace", size: 512, atLeast: 46 },
];
/** No trace and size may leave tinylfu more than this many points below LRU. */
const MAX_POINTS_BELOW_LRU = 2;
/** Reference columns: the CSV's policy name, and the column title. */
const REFERENCES = [
  ["LRU", "ref LRU"],
  ["W-TinyLFU+hill-climbing (BitFaster ConcurrentLfu)", "ref W-TinyLFU"],
  ["ARC", "ref ARC"],
  ["OPT(Belady)", "ref OPT"],
];

async function syntheticTable(ctx) {
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
    title: `Hit ratio (issue 3): capacity ${capacity / 1000}k entries, ${n} requests per trace, first 10% not counted; a miss is followed by a set`,
    columns: result.columns,
    rows: result.rows,
  };
}

/** "lirs/gli.trace" -> "gli", "OLTP.lis" -> "OLTP". */
function shortName(trace) {
  return trace.replace(/^lirs\//, "").replace(/\.(trace|lis)$/, "");
}

async function realTraceTable(ctx) {
  const references = readReferences();
  const goalKeys = new Set(GOALS.map((g) => `${g.trace}@${g.size}`));
  const cases = new Map();
  for (const { trace, size } of references.values()) {
    if (ctx.quick && !goalKeys.has(`${trace}@${size}`)) continue;
    if (!cases.has(trace)) cases.set(trace, []);
    cases.get(trace).push(size);
  }
  const { dir, remove } = decompressTraces();
  let result;
  try {
    const child = await startChild("hit-ratio", {}, { execArgv: ["--max-old-space-size=4096"] });
    try {
      result = await child.call("runTraces", { dir, cases: [...cases].map(([file, sizes]) => ({ file, sizes })) });
    } finally {
      await child.stop();
    }
  } finally {
    remove();
  }
  const rows = result.rows.map((row) => {
    const reference = references.get(`${row.file}@${row.size}`)?.policies ?? {};
    const hitRatio = { ...row.hitRatio };
    for (const [policy, column] of REFERENCES) if (reference[policy]) hitRatio[column] = reference[policy].pct / 100;
    return { trace: `${shortName(row.file)} @ ${row.size}`, file: row.file, size: row.size, hitRatio, seconds: row.seconds };
  });
  ctx.log(`  real traces: ${rows.length} trace sizes in ${rows.reduce((s, r) => s + r.seconds, 0).toFixed(1)} s`);

  const pct = (row, column) => row.hitRatio[column] * 100;
  const notes = [];
  for (const goal of GOALS) {
    const row = rows.find((r) => r.file === goal.trace && r.size === goal.size);
    if (row === undefined) continue;
    const value = pct(row, "tinylfu");
    notes.push(`goal: tinylfu on ${row.trace} >= ${goal.atLeast}%: ${value.toFixed(2)}% ${value >= goal.atLeast ? "met" : "MISSED"}`);
  }
  const worst = rows.reduce((w, r) => (pct(r, "tinylfu") - pct(r, "lru") < pct(w, "tinylfu") - pct(w, "lru") ? r : w));
  const gap = pct(worst, "tinylfu") - pct(worst, "lru");
  notes.push(`goal: tinylfu never more than ${MAX_POINTS_BELOW_LRU} points below lru: least tinylfu - lru ${gap >= 0 ? "+" : ""}${gap.toFixed(2)} points (${worst.trace}) ${gap >= -MAX_POINTS_BELOW_LRU ? "met" : "MISSED"}`);
  notes.push("ref columns from reference_hit_ratios.csv: LRU published for OLTP (BitFaster.Caching PR 191), else computed; W-TinyLFU with hill climbing published (BitFaster.Caching PR 196); ARC and OPT (Belady) computed by independent simulators.");
  return {
    title: `Hit ratio on real traces (issue 14; ${TRACES_DIR}): capacity in entries, cold start, every request counted, a miss is followed by a set`,
    columns: [...result.columns, ...REFERENCES.map(([, column]) => column)],
    rows,
    notes,
  };
}

export default {
  name: NAME,
  description: "hit ratio per policy vs lru-cache: synthetic Zipf / scan traces, and the real traces of ../shared/traces beside published figures (separate tables)",
  async run(ctx) {
    const tables = [await syntheticTable(ctx)];
    if (tracesAvailable()) tables.push(await realTraceTable(ctx));
    else ctx.log(`  real traces skipped: ${TRACES_DIR}/reference_hit_ratios.csv or the xz command is missing`);
    return { rows: [], tables };
  },
};
