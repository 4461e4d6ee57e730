/** Result rows, goal verdicts, and the tables the harness prints. */
import { fmt, ratioSummary } from "./stats.js";

/**
 * A measured row. `ratios` holds one subject/baseline ratio per round, in
 * the sense the goal states (time ratio for latency and CPU, speed ratio
 * for throughput); `goal` is `{ op: "<=" | ">=", value }` or undefined (informational).
 */
export function measured({ scenario, subject, baseline, ratios, goal, context, metric }) {
  const ratio = ratioSummary(ratios);
  let verdict = "info";
  if (goal) verdict = (goal.op === "<=" ? ratio.median <= goal.value : ratio.median >= goal.value) ? "met" : "missed";
  return { scenario, subject, baseline, metric, ratio, goal: goal ?? null, verdict, context };
}

/** A row whose subject does not exist yet: the baseline may be measured, the ratio never invented. */
export function unavailable({ scenario, subject, baseline, goal, context, reason = "not available yet" }) {
  return { scenario, subject, baseline, ratio: null, goal: goal ?? null, verdict: "n/a", context: context ?? "", unavailable: reason };
}

function ratioText(row) {
  if (!row.ratio) return row.unavailable;
  const { median, min, max } = row.ratio;
  // Three decimals when two would round onto the goal and hide which side of it the median is.
  const digits = row.goal && median.toFixed(2) === row.goal.value.toFixed(2) && median !== row.goal.value ? 3 : 2;
  return `${median.toFixed(digits)}× (${min.toFixed(2)}–${max.toFixed(2)})`;
}

function goalText(row) {
  if (!row.goal) return row.verdict === "n/a" ? "n/a" : "—";
  const g = `${row.goal.op === "<=" ? "≤" : "≥"}${row.goal.value}×`;
  return row.verdict === "n/a" ? `${g} n/a` : `${g} ${row.verdict}`;
}

/** Renders rows as a Markdown table (also readable on a terminal). */
export function renderTable(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
  return [line(headers), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

/** The one results table: scenario | subject | baseline | ratio | goal | context. */
export function mainTable(rows) {
  return renderTable(
    ["scenario", "subject", "baseline", "ratio: median (min–max)", "goal", "context"],
    rows.map((r) => [r.scenario, r.subject, r.baseline, ratioText(r), goalText(r), r.context]),
  );
}

/** The hit-ratio table: one row per trace, one column per cache. */
export function hitRatioTable(table) {
  return renderTable(
    ["trace", ...table.columns],
    table.rows.map((r) => [r.trace, ...table.columns.map((c) => (r.hitRatio[c] === undefined ? "—" : `${(r.hitRatio[c] * 100).toFixed(2)}%`))]),
  );
}

export { fmt };
