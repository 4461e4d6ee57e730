#!/usr/bin/env node
/**
 * `npm run bench [-- <filter>] [--quick]`: runs the benchmark scenarios of
 * bench/scenarios/ (those whose name matches the filter, a regex or
 * substring), prints one table of ratios against baselines measured in the
 * same run, and writes bench/results/<timestamp>.json and latest.json.
 *
 * BENCH_QUICK=1 or --quick: a smoke run of a few hundred ops per scenario.
 * BENCH_PROFILE=1 or --profile: server children run with --cpu-prof
 * (profiles in bench/results/profiles/; summarize with bench/profile-summary.js).
 * BENCH_ALLOC_PROFILE=1 or --alloc-profile: the same children sample their
 * allocations instead, freed ones included (.heapprofile files, same place,
 * same summary script).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { envFlag } from "./lib/env-flag.js";
import { DIST, ROOT } from "./lib/paths.js";
import { redisAvailable, startRedis } from "./lib/redis.js";
import { busyFraction, waitQuiet } from "./lib/quiet.js";
import { hitRatioTable, mainTable } from "./lib/report.js";
import { scenarios } from "./scenarios/index.js";

const args = process.argv.slice(2);
const quick = args.includes("--quick") || envFlag("BENCH_QUICK");
if (args.includes("--alloc-profile")) process.env.BENCH_ALLOC_PROFILE = "1"; // read by lib/child.js
const allocProfile = envFlag("BENCH_ALLOC_PROFILE");
const profile = allocProfile || args.includes("--profile") || envFlag("BENCH_PROFILE");
const filters = args.filter((a) => !a.startsWith("--"));

if (args.includes("--help")) {
  process.stdout.write(`usage: npm run bench -- [filter] [--quick] [--profile | --alloc-profile]\n\nscenarios:\n${scenarios.map((s) => `  ${s.name.padEnd(20)} ${s.description}`).join("\n")}\n`);
  process.exit(0);
}

function matches(name) {
  if (filters.length === 0) return true;
  return filters.some((filter) => {
    try {
      return new RegExp(filter, "i").test(name);
    } catch {
      return name.includes(filter);
    }
  });
}

const log = (message) => process.stderr.write(`[bench] ${message}\n`);

// Build (incremental): the harness imports the compiled project from dist/.
const started = Date.now();
const tsc = process.env.BENCH_DIST ? { status: 0 } : spawnSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], { cwd: ROOT, encoding: "utf8" });
if (tsc.status !== 0) {
  if (!existsSync(join(DIST, "server/index.js"))) {
    process.stderr.write(tsc.stdout + tsc.stderr);
    log("build failed and dist/ is missing");
    process.exit(1);
  }
  log(`warning: tsc reported errors; benchmarking what it emitted to dist/:\n${(tsc.stdout + tsc.stderr).trim().split("\n").slice(0, 10).join("\n")}`);
}
log(process.env.BENCH_DIST ? `using ${DIST} (BENCH_DIST; not built)` : `build ${((Date.now() - started) / 1000).toFixed(1)} s`);

const selected = scenarios.filter((s) => matches(s.name));
if (selected.length === 0) {
  log(`no scenario matches ${filters.join(" ")}; try --help`);
  process.exit(2);
}

let redis;
const ctx = {
  quick,
  profile,
  rounds: quick ? 1 : 5,
  log,
  /** The run's own redis-server (started on first use), or undefined when redis-server is not on PATH. */
  async redis() {
    if (redis === undefined) redis = redisAvailable() ? await startRedis() : null;
    return redis ?? undefined;
  },
};

const rows = [];
const tables = [];
const timings = {};
const busyAtStart = {};
let waitBudgetMs = 120_000; // at most this long waiting for quiet, over the whole run
let failed = false;
for (const scenario of selected) {
  // A shared machine: wait (a bounded time) for other work to calm down; record how busy it was.
  const waitStart = Date.now();
  const busy = quick ? await busyFraction(100) : await waitQuiet({ log, maxWaitMs: Math.min(45_000, waitBudgetMs) });
  waitBudgetMs = Math.max(0, waitBudgetMs - (Date.now() - waitStart));
  busyAtStart[scenario.name] = busy;
  const t0 = Date.now();
  log(`${scenario.name}: ${scenario.description}${busy === undefined ? "" : ` (other load ${(busy * 100).toFixed(0)}% of CPU)`}`);
  try {
    const result = await scenario.run(ctx);
    rows.push(...result.rows);
    if (result.table) tables.push(result.table);
    if (result.tables) tables.push(...result.tables);
  } catch (err) {
    failed = true;
    log(`${scenario.name} FAILED: ${err?.stack ?? err}`);
    rows.push({ scenario: scenario.name, subject: "(scenario failed)", baseline: "", ratio: null, goal: null, verdict: "error", context: String(err?.message ?? err).split("\n")[0].slice(0, 120), unavailable: "error" });
  }
  timings[scenario.name] = (Date.now() - t0) / 1000;
  log(`${scenario.name}: ${timings[scenario.name].toFixed(1)} s`);
}
await redis?.stop();

const totalSeconds = (Date.now() - started) / 1000;
const date = new Date();
let output = `\ntiercache benchmarks, ${date.toISOString()}${quick ? " (QUICK: smoke run, numbers are not meaningful)" : ""}\n`;
output += `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; ${totalSeconds.toFixed(0)} s\n`;
const busyValues = Object.values(busyAtStart).filter((b) => b !== undefined);
if (busyValues.length > 0) {
  const worst = Math.max(...busyValues);
  output += `CPU busy with other work before scenarios: up to ${(worst * 100).toFixed(0)}%${worst > 0.25 ? " (a noisy machine: trust ratios of interleaved rounds, not absolute numbers)" : ""}\n`;
}
output += "\n";
if (rows.length > 0) output += `${mainTable(rows)}\n`;
for (const table of tables) output += `\n${table.title}\n\n${hitRatioTable(table)}\n${(table.notes ?? []).map((note) => `\n${note}`).join("")}${table.notes ? "\n" : ""}`;
const missed = rows.filter((r) => r.verdict === "missed");
output += `\ngoals: ${rows.filter((r) => r.verdict === "met").length} met, ${missed.length} missed, ${rows.filter((r) => r.verdict === "n/a").length} not available yet\n`;
process.stdout.write(output);

const resultsDir = join(ROOT, "bench/results");
mkdirSync(resultsDir, { recursive: true });
const json = JSON.stringify(
  { date: date.toISOString(), quick, filters, dist: DIST, node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, totalSeconds, timings, busyAtStart, rows, tables },
  null,
  2,
);
const stamp = date.toISOString().replace(/[:.]/g, "-");
writeFileSync(join(resultsDir, `${stamp}.json`), json);
writeFileSync(join(resultsDir, "latest.json"), json);
log(`results: bench/results/${stamp}.json (and latest.json)`);
process.exit(failed ? 1 : 0);
