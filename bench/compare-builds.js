#!/usr/bin/env node
/**
 * Two builds of tiercache, A and B, side by side on the Redis-tier Get of
 * `redis-service-get` (memory tier of 1 entry, so every Get reads Redis),
 * with the guarded echo of that scenario (its floor) as a third server. The
 * three run at once and are measured as that scenario measures its servers
 * (bench/lib/unary-pair.js: slices whose order rotates, through one load
 * child), so a drift of the machine hits all three alike: what a change to
 * the server is worth, which two separate `npm run bench` runs cannot tell
 * apart from the machine's own drift.
 *
 *   npm run build && cp -r dist bench/tmp/dist-a     (before a change)
 *   npm run build && cp -r dist bench/tmp/dist-b     (after it)
 *   node bench/compare-builds.js bench/tmp/dist-a bench/tmp/dist-b [--rounds 8] [--b-node-flags "--flag ..."]
 *   node bench/compare-builds.js bench/tmp/dist-a stack-min [--rounds 8]
 *
 * With `stack-min` as B, B is not a build but bench/children/stack-min-server.js:
 * the least server on tiercache's stack that does a Redis-tier Get's work
 * (decode, key check, a 1-entry LRU, the floor's guarded GET, promotion,
 * encode with build A's codec), which tells what the stack itself allows.
 *
 * A build must sit inside a checkout (bench/tmp/ is gitignored) so that its
 * imports find node_modules. Both builds get their calls through build A's
 * CacheClient: only the servers differ. Prints, per server, the medians over
 * rounds of: p50 latency and server CPU per call one call at a time,
 * throughput and server CPU per call at 100 in flight; then B/A and each
 * build against the floor as medians (min–max) of per-round ratios.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { startChild } from "./lib/child.js";
import { startSeededRedis } from "./lib/seeded-redis.js";
import { messageSizes } from "./lib/sizes.js";
import { median } from "./lib/stats.js";
import { measureUnary } from "./lib/unary-pair.js";

const KEYS = 10_000;

const USAGE = "usage: node bench/compare-builds.js <dist A> <dist B | stack-min> [--rounds N] [--b-node-flags FLAGS]\n";
const STACK_MIN = "stack-min";

/** Whether the build in `dir` finds its imports (it sits inside a checkout with node_modules). */
function usableBuild(dir) {
  try {
    createRequire(resolve(dir, "server/index.js")).resolve("@grpc/grpc-js");
    return true;
  } catch {
    return false;
  }
}

/** The builds and options of the command line; prints usage and exits 2 when they do not make sense (0 for --help). */
function parseArgs(argv) {
  const options = { rounds: 8, bNodeFlags: [] };
  const builds = [];
  const valueOf = (i) => {
    if (argv[i] !== undefined) return argv[i];
    process.stderr.write(`${argv[i - 1]} needs a value\n${USAGE}`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--help" || arg === "-h") {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (arg === "--rounds") options.rounds = Number(valueOf(++i));
    else if (arg === "--b-node-flags") options.bNodeFlags = valueOf(++i).split(" ").filter(Boolean);
    else builds.push(arg === STACK_MIN && builds.length === 1 ? arg : resolve(arg));
  }
  if (builds.length !== 2 || !(Number.isInteger(options.rounds) && options.rounds > 0)) {
    process.stderr.write(USAGE);
    process.exit(2);
  }
  for (const dir of builds) {
    if (dir === STACK_MIN) continue;
    if (!existsSync(resolve(dir, "server/index.js"))) {
      process.stderr.write(`${dir} holds no server/index.js: give a copy of dist/\n${USAGE}`);
      process.exit(2);
    }
    if (usableBuild(dir)) continue;
    process.stderr.write(`${dir} is a build whose imports do not resolve: copy dist/ inside the checkout (bench/tmp/dist-a, say)\n${USAGE}`);
    process.exit(2);
  }
  return { a: builds[0], b: builds[1], ...options };
}

const options = parseArgs(process.argv.slice(2));
const redis = await startSeededRedis(KEYS);
const servers = {};
let load;
try {
  const sizes = await messageSizes();
  const tier = { storage: "memory", redisUrl: redis.url, memoryMaxEntries: 1 };
  // The load child's target names: "tc" is build A, "tc-b" build B, "echo-guarded" the floor.
  servers.tc = await startChild("tiercache-server", tier, { label: "A", env: { BENCH_DIST: options.a } });
  servers["tc-b"] =
    options.b === STACK_MIN
      ? await startChild("stack-min-server", { redisUrl: redis.url }, { label: "stack-min", env: { BENCH_DIST: options.a }, execArgv: options.bNodeFlags })
      : await startChild("tiercache-server", tier, { label: "B", env: { BENCH_DIST: options.b }, execArgv: options.bNodeFlags });
  servers["echo-guarded"] = await startChild("echo-server", { unaryResponseBytes: sizes.getResponse, redisUrl: redis.url, guardedGet: true }, { label: "floor" });
  load = await startChild(
    "grpc-load",
    { tcAddress: servers.tc.info.address, tcBAddress: servers["tc-b"].info.address, guardedAddress: servers["echo-guarded"].info.address, redisKeys: true, keys: KEYS },
    { env: { BENCH_DIST: options.a } },
  );
  const ctx = { quick: false, rounds: options.rounds, log: (line) => process.stderr.write(`${line}\n`) };
  const targets = ["tc", "tc-b", "echo-guarded"];
  const results = await measureUnary(ctx, load, servers, targets, { seqCpu: true });

  const metrics = [
    ["p50, 1 in flight", (r) => r.seq.p50, (v) => `${v.toFixed(1)} µs`],
    ["server CPU per call, 1 in flight", (r) => r.seq.cpuPerCall, (v) => `${v.toFixed(1)} µs`],
    ["throughput, 100 in flight", (r) => r.c100.opsPerSec, (v) => `${Math.round(v)} ops/s`],
    ["server CPU per call, 100 in flight", (r) => r.cpuPerCall, (v) => `${v.toFixed(1)} µs`],
  ];
  const ratio = (x, y, pick) => {
    const per = results[x].map((r, i) => pick(r) / pick(results[y][i])).sort((p, q) => p - q);
    return `${median(per).toFixed(3)} (${per[0].toFixed(2)}–${per.at(-1).toFixed(2)})`;
  };
  process.stdout.write(`A = ${options.a}\nB = ${options.b}${options.bNodeFlags.length ? ` (node ${options.bNodeFlags.join(" ")})` : ""}\nfloor = echo-server with guardedGet\n\n`);
  process.stdout.write("| metric | A | B | floor | B/A | A/floor | B/floor |\n|---|---:|---:|---:|---:|---:|---:|\n");
  for (const [label, pick, format] of metrics) {
    const cells = targets.map((t) => format(median(results[t].map(pick))));
    process.stdout.write(`| ${label} | ${cells.join(" | ")} | ${ratio("tc-b", "tc", pick)} | ${ratio("tc", "echo-guarded", pick)} | ${ratio("tc-b", "echo-guarded", pick)} |\n`);
  }
} finally {
  await load?.stop();
  await Promise.all(Object.values(servers).map((server) => server.stop()));
  await redis.stop();
}
