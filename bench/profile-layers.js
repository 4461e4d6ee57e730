#!/usr/bin/env node
/**
 * Where a sequential Redis-tier Get spends its server CPU, layer by layer,
 * for four servers over one Redis: the echo that awaits one ioredis GET (the
 * goal's baseline), the floor (that echo with the failure policy), the least
 * server on tiercache's stack (bench/children/stack-min-server.js) and
 * tiercache (a build's dist, memory tier of 1 entry). Each server is
 * profiled only while it answers its own slice of Gets, one call at a time
 * (V8 CPU profile started and stopped in the server process), in an order
 * that rotates every round; the self time of every sample is put in a layer
 * by where its function lives (grpc-js, Node's own JavaScript, ioredis,
 * tiercache, native code and GC, ...) and divided by the calls answered.
 *
 *   npm run build
 *   node bench/profile-layers.js [--rounds 6] [--slice-ms 3000] [--dist dist]
 *
 * The profiler slows every server; compare servers with each other, not
 * with the p50s of `npm run bench`.
 */
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { startChild } from "./lib/child.js";
import { startSeededRedis } from "./lib/seeded-redis.js";
import { messageSizes } from "./lib/sizes.js";
import { median } from "./lib/stats.js";

const KEYS = 10_000;
const SAMPLING_US = 100;

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at === -1 ? fallback : args[at + 1];
};
const rounds = Number(option("--rounds", 6));
const sliceMs = Number(option("--slice-ms", 3000));
const dist = resolve(option("--dist", "dist"));
if (!(Number.isInteger(rounds) && rounds > 0 && sliceMs > 0)) {
  process.stderr.write("usage: node bench/profile-layers.js [--rounds N] [--slice-ms MS] [--dist DIR]\n");
  process.exit(2);
}

/** The layer of a profile node, by the script its function lives in. */
function layerOf(callFrame) {
  const { url, functionName } = callFrame;
  if (url === "") {
    if (functionName === "(idle)") return "idle";
    if (functionName === "(garbage collector)") return "GC";
    return "native (no script: builtins, bindings, VM)";
  }
  if (url.startsWith("node:")) return "Node's JavaScript (http2, net, streams, timers)";
  const inPackage = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (inPackage) {
    const name = inPackage[1];
    if (name === "@grpc/grpc-js") return "grpc-js";
    if (name === "ioredis" || name === "redis-parser" || name === "@ioredis/commands" || name === "denque" || name === "cluster-key-slot" || name === "standard-as-callback") return "ioredis and its parser";
    if (name === "opossum") return "opossum";
    if (name === "lru-cache") return "lru-cache";
    if (name === "@bufbuild/protobuf") return "protobuf-es";
    return "other packages";
  }
  if (url.includes("/bench/")) return "bench server code";
  return "tiercache (dist)";
}

/**
 * CPU time (µs) of each thread of process `pid` so far, by kind: the main
 * thread, V8's workers (GC helpers, compiler), libuv's pool, others by name;
 * the profiler's own thread left out. Linux's /proc schedstat (ns); empty
 * elsewhere.
 */
function threadTimes(pid) {
  const times = new Map();
  let tasks = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return times;
  }
  for (const tid of tasks) {
    try {
      const onCpuNs = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      if (name === "v8:ProfEvntProc") continue; // the profiler's own thread
      const kind = tid === String(pid) ? "main thread" : name.startsWith("V8 ") ? "V8 worker threads (GC, compiler)" : name.startsWith("libuv") ? "libuv thread pool" : `thread "${name}"`;
      times.set(kind, (times.get(kind) ?? 0) + onCpuNs / 1000);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return times;
}

/** Microseconds of self time per layer in one CPU profile. */
function layerTimes(profile) {
  const layerOfNode = new Map(profile.nodes.map((node) => [node.id, layerOf(node.callFrame)]));
  const times = new Map();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const spent = timeDeltas[i + 1] ?? 0;
    const layer = layerOfNode.get(samples[i]);
    times.set(layer, (times.get(layer) ?? 0) + spent);
  }
  return times;
}

const TARGETS = [
  ["echo", "echo + GET"],
  ["echo-guarded", "floor"],
  ["stack-min", "stack-min"],
  ["tc", "tiercache"],
];

const redis = await startSeededRedis(KEYS);
const servers = {};
let load;
try {
  const sizes = await messageSizes();
  const env = { BENCH_DIST: dist };
  servers.echo = await startChild("echo-server", { unaryResponseBytes: sizes.getResponse, redisUrl: redis.url }, { label: "echo" });
  servers["echo-guarded"] = await startChild("echo-server", { unaryResponseBytes: sizes.getResponse, redisUrl: redis.url, guardedGet: true }, { label: "floor" });
  servers["stack-min"] = await startChild("stack-min-server", { redisUrl: redis.url }, { label: "stack-min", env });
  servers.tc = await startChild("tiercache-server", { storage: "memory", redisUrl: redis.url, memoryMaxEntries: 1 }, { label: "tiercache", env });
  load = await startChild(
    "grpc-load",
    {
      echoAddress: servers.echo.info.address,
      guardedAddress: servers["echo-guarded"].info.address,
      stackMinAddress: servers["stack-min"].info.address,
      tcAddress: servers.tc.info.address,
      redisKeys: true,
      keys: KEYS,
    },
    { env },
  );
  for (const [target] of TARGETS) {
    await load.call("unary", { target, concurrency: 100, durationMs: 2000 });
    await load.call("unary", { target, concurrency: 1, durationMs: 1000 });
  }
  const perTarget = Object.fromEntries(TARGETS.map(([target]) => [target, { calls: 0, times: new Map(), threads: new Map(), p50s: [] }]));
  for (let round = 0; round < rounds; round++) {
    const order = TARGETS.map((_, i) => TARGETS[(i + round) % TARGETS.length][0]);
    for (const target of order) {
      await servers[target].call("profileStart", { intervalUs: SAMPLING_US });
      const before = threadTimes(servers[target].pid);
      const result = await load.call("unary", { target, concurrency: 1, durationMs: sliceMs });
      const after = threadTimes(servers[target].pid);
      const profile = await servers[target].call("profileStop");
      const into = perTarget[target];
      for (const [kind, us] of after) into.threads.set(kind, (into.threads.get(kind) ?? 0) + us - (before.get(kind) ?? 0));
      into.calls += result.calls;
      into.p50s.push(result.p50);
      for (const [layer, us] of layerTimes(profile)) into.times.set(layer, (into.times.get(layer) ?? 0) + us);
    }
    process.stderr.write(`  round ${round + 1} of ${rounds}\n`);
  }
  const layers = [...new Set(TARGETS.flatMap(([target]) => [...perTarget[target].times.keys()]))].filter((layer) => layer !== "idle").sort();
  const perCall = (target, layer) => (perTarget[target].times.get(layer) ?? 0) / perTarget[target].calls;
  const busy = (target) => layers.reduce((sum, layer) => sum + perCall(target, layer), 0);
  const cell = (value) => value.toFixed(1);
  const lines = [
    `server CPU per sequential Redis-tier Get, µs of self time per call by layer (${rounds} rounds of ${sliceMs} ms per server, sampled every ${SAMPLING_US} µs; dist ${dist})`,
    "",
    `| layer | ${TARGETS.map(([, label]) => label).join(" | ")} | stack-min − echo | tiercache − stack-min |`,
    `|---|${TARGETS.map(() => "---:").join("|")}|---:|---:|`,
    ...layers.map((layer) => `| ${layer} | ${TARGETS.map(([target]) => cell(perCall(target, layer))).join(" | ")} | ${cell(perCall("stack-min", layer) - perCall("echo", layer))} | ${cell(perCall("tc", layer) - perCall("stack-min", layer))} |`),
    `| **busy, all layers** | ${TARGETS.map(([target]) => cell(busy(target))).join(" | ")} | ${cell(busy("stack-min") - busy("echo"))} | ${cell(busy("tc") - busy("stack-min"))} |`,
    `| p50 under the profiler (median of rounds) | ${TARGETS.map(([target]) => `${cell(median(perTarget[target].p50s))}`).join(" | ")} | | |`,
    `| calls profiled | ${TARGETS.map(([target]) => String(perTarget[target].calls)).join(" | ")} | | |`,
  ];
  const kinds = [...new Set(TARGETS.flatMap(([target]) => [...perTarget[target].threads.keys()]))].sort();
  if (kinds.length > 0) {
    const threadPerCall = (target, kind) => (perTarget[target].threads.get(kind) ?? 0) / perTarget[target].calls;
    const all = (target) => kinds.reduce((sum, kind) => sum + threadPerCall(target, kind), 0);
    lines.push(
      "",
      "server CPU per call by thread (the kernel's count; the main thread's includes the profiler's sampling), µs",
      "",
      `| thread | ${TARGETS.map(([, label]) => label).join(" | ")} | stack-min − echo | tiercache − stack-min |`,
      `|---|${TARGETS.map(() => "---:").join("|")}|---:|---:|`,
      ...kinds.map((kind) => `| ${kind} | ${TARGETS.map(([target]) => cell(threadPerCall(target, kind))).join(" | ")} | ${cell(threadPerCall("stack-min", kind) - threadPerCall("echo", kind))} | ${cell(threadPerCall("tc", kind) - threadPerCall("stack-min", kind))} |`),
      `| **all threads** | ${TARGETS.map(([target]) => cell(all(target))).join(" | ")} | ${cell(all("stack-min") - all("echo"))} | ${cell(all("tc") - all("stack-min"))} |`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  await load?.stop();
  await Promise.all(Object.values(servers).map((server) => server.stop()));
  await redis.stop();
}
