#!/usr/bin/env node
/**
 * Two builds of tiercache, A and B, side by side on the Redis-tier Get of
 * `redis-service-get` (memory tier of 1 entry, so every Get reads Redis),
 * with the guarded echo of that scenario (its floor) as a third server. The
 * three run at once and are measured in short slices whose order rotates
 * from round to round, so a drift of the machine hits all three alike: what
 * a change to the server is worth, which two separate `npm run bench` runs
 * cannot tell apart from the machine's own drift.
 *
 *   npm run build && cp -r dist bench/tmp/dist-a     (before a change)
 *   npm run build && cp -r dist bench/tmp/dist-b     (after it)
 *   node bench/compare-builds.js bench/tmp/dist-a bench/tmp/dist-b [--rounds 12] [--seq-ms 600] [--c100-ms 700] [--b-node-flags "--flag ..."]
 *
 * A build must sit inside a checkout (bench/tmp/ is gitignored) so that its
 * imports find node_modules.
 *
 * Every server gets the same calls from this process, through one client
 * (build A's CacheClient for both builds: only the servers differ). Prints,
 * per server, the medians over rounds of: p50 latency one call at a time,
 * server CPU per call one at a time, throughput and server CPU per call at
 * 100 in flight; then B/A and each build against the floor as medians (min–
 * max) of per-round ratios.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Client, Metadata, credentials } from "@grpc/grpc-js";
import { startChild } from "./lib/child.js";
import { startRedis } from "./lib/redis.js";
import { cpuMicros, roundOrder } from "./lib/rounds.js";
import { messageSizes } from "./lib/sizes.js";
import { latencySummary, median } from "./lib/stats.js";

const KEYS = 10_000;
const DEADLINE_MS = 5000;

const USAGE = "usage: node bench/compare-builds.js <dist A> <dist B> [--rounds N] [--seq-ms MS] [--c100-ms MS] [--b-node-flags FLAGS]\n";

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
  const options = { rounds: 12, seqMs: 600, c100Ms: 700, bNodeFlags: [] };
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
    else if (arg === "--seq-ms") options.seqMs = Number(valueOf(++i));
    else if (arg === "--c100-ms") options.c100Ms = Number(valueOf(++i));
    else if (arg === "--b-node-flags") options.bNodeFlags = valueOf(++i).split(" ").filter(Boolean);
    else builds.push(resolve(arg));
  }
  const counts = [options.rounds, options.seqMs, options.c100Ms];
  if (builds.length !== 2 || !counts.every((n) => Number.isInteger(n) && n > 0)) {
    process.stderr.write(USAGE);
    process.exit(2);
  }
  for (const dir of builds) {
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

/** Closed loop of `concurrency` callers for `ms`: calls, throughput and p50 (µs). */
async function closedLoop(call, concurrency, ms) {
  const samples = [];
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        await call();
        samples.push((performance.now() - t0) * 1000);
      }
    }),
  );
  const elapsed = performance.now() - start;
  return { calls: samples.length, opsPerSec: (samples.length / elapsed) * 1000, p50: latencySummary(Float64Array.from(samples)).p50 };
}

/** One slice of `target`: the loop, and the server's CPU per call over it. */
async function slice(server, call, concurrency, ms) {
  const before = await server.call("cpu");
  const result = await closedLoop(call, concurrency, ms);
  return { ...result, cpuPerCall: cpuMicros(before, await server.call("cpu")) / result.calls };
}

const options = parseArgs(process.argv.slice(2));
const redis = await startRedis();
const servers = {};
try {
  const seed = await startChild("redis-load", { url: redis.url });
  await seed.call("preload", { count: KEYS });
  await seed.stop();
  const sizes = await messageSizes();
  servers.floor = await startChild("echo-server", { unaryResponseBytes: sizes.getResponse, redisUrl: redis.url, guardedGet: true }, { label: "floor" });
  const tier = { storage: "memory", redisUrl: redis.url, memoryMaxEntries: 1 };
  servers.A = await startChild("tiercache-server", tier, { label: "A", env: { BENCH_DIST: options.a } });
  servers.B = await startChild("tiercache-server", tier, { label: "B", env: { BENCH_DIST: options.b }, execArgv: options.bNodeFlags });

  const keys = Array.from({ length: KEYS }, (_, i) => `key:${String(i).padStart(8, "0")}`);
  const value = Buffer.alloc(1024, 7);
  let cursor = 0;
  const nextIndex = () => (cursor++ * 7919) % KEYS;
  const { CacheClient } = await import(pathToFileURL(resolve(options.a, "client/index.js")).href);
  const calls = {};
  const clients = [];
  for (const name of ["A", "B"]) {
    const client = new CacheClient({ address: servers[name].info.address, timeoutMs: DEADLINE_MS });
    clients.push(client);
    for (let i = 0; i < KEYS; i += 1000) await client.setMany(keys.slice(i, i + 1000).map((key) => [key, value]));
    calls[name] = async () => {
      if ((await client.get(keys[nextIndex()])) === undefined) throw new Error(`build ${name} missed a key it was given`);
    };
  }
  const echo = new Client(servers.floor.info.address, credentials.createInsecure());
  const redisKeys = keys.map((key) => Buffer.from(`bench:${key}`, "latin1"));
  const passThrough = (bytes) => bytes;
  calls.floor = () =>
    new Promise((resolve, reject) =>
      echo.makeUnaryRequest("/bench.Echo/Unary", passThrough, passThrough, redisKeys[nextIndex()], new Metadata(), { deadline: Date.now() + DEADLINE_MS }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );

  const targets = ["A", "B", "floor"];
  for (const target of targets) {
    await closedLoop(calls[target], 100, 1500);
    await closedLoop(calls[target], 1, 700);
  }
  const results = Object.fromEntries(targets.map((t) => [t, []]));
  for (let round = 0; round < options.rounds; round++) {
    const seq = {};
    for (const target of roundOrder(round, targets)) seq[target] = await slice(servers[target], calls[target], 1, options.seqMs);
    for (const target of roundOrder(round + 1, targets)) {
      const c100 = await slice(servers[target], calls[target], 100, options.c100Ms);
      results[target].push({ p50: seq[target].p50, seqCpu: seq[target].cpuPerCall, ops: c100.opsPerSec, cpu: c100.cpuPerCall });
    }
    process.stderr.write(`round ${round + 1}/${options.rounds}\n`);
  }
  echo.close();
  for (const client of clients) client.close();

  const metrics = [
    ["p50, 1 in flight", "p50", (v) => `${v.toFixed(1)} µs`],
    ["server CPU per call, 1 in flight", "seqCpu", (v) => `${v.toFixed(1)} µs`],
    ["throughput, 100 in flight", "ops", (v) => `${Math.round(v)} ops/s`],
    ["server CPU per call, 100 in flight", "cpu", (v) => `${v.toFixed(1)} µs`],
  ];
  const ratio = (x, y, key) => {
    const per = results[x].map((r, i) => r[key] / results[y][i][key]).sort((p, q) => p - q);
    return `${median(per).toFixed(3)} (${per[0].toFixed(2)}–${per.at(-1).toFixed(2)})`;
  };
  process.stdout.write(`A = ${options.a}\nB = ${options.b}${options.bNodeFlags.length ? ` (node ${options.bNodeFlags.join(" ")})` : ""}\nfloor = echo-server with guardedGet\n\n`);
  process.stdout.write("| metric | A | B | floor | B/A | A/floor | B/floor |\n|---|---:|---:|---:|---:|---:|---:|\n");
  for (const [label, key, format] of metrics) {
    const cells = targets.map((t) => format(median(results[t].map((r) => r[key]))));
    process.stdout.write(`| ${label} | ${cells.join(" | ")} | ${ratio("B", "A", key)} | ${ratio("A", "floor", key)} | ${ratio("B", "floor", key)} |\n`);
  }
} finally {
  await Promise.all(Object.values(servers).map((server) => server.stop()));
  await redis.stop();
}
