#!/usr/bin/env node
/**
 * Summarizes V8 CPU profiles (from `npm run bench -- <filter> --profile`,
 * written to bench/results/profiles/): the top functions by self time; and
 * allocation profiles (`--alloc-profile`, .heapprofile): the top allocating
 * functions by sampled bytes.
 *
 *   node bench/profile-summary.js [--top N] <file.cpuprofile>...
 *   node bench/profile-summary.js --latest service-get-tiercache   (newest profile whose name starts so)
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const PROFILES = join(ROOT, "bench/results/profiles");
const args = process.argv.slice(2);
let top = 25;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--top") top = Number(args[++i]);
  else if (args[i] === "--latest") {
    const prefix = args[++i];
    const newest = readdirSync(PROFILES)
      .filter((f) => f.startsWith(prefix) && (f.endsWith(".cpuprofile") || f.endsWith(".heapprofile")))
      .map((f) => join(PROFILES, f))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
    if (!newest) throw new Error(`no profile starting with ${prefix} in ${PROFILES}`);
    files.push(newest);
  } else files.push(args[i]);
}
if (files.length === 0) {
  process.stderr.write("usage: node bench/profile-summary.js [--top N] (<file.cpuprofile> | --latest <prefix>)...\n");
  process.exit(2);
}

function where(frame) {
  if (!frame.url) return "";
  let url = frame.url.replace(/^file:\/\//, "");
  if (url.startsWith(ROOT)) url = relative(ROOT, url);
  url = url.replace(/^node_modules\//, "");
  return `${url}:${frame.lineNumber + 1}`;
}

/** Allocation profiles (--alloc-profile): sampled bytes by allocating function, freed objects included. */
function summarizeAllocations(file, profile) {
  const self = new Map();
  let total = 0;
  const walk = (node) => {
    if (node.selfSize > 0) {
      const frame = node.callFrame;
      const name = `${frame.functionName || "(anonymous)"} ${where(frame)}`.trim();
      self.set(name, (self.get(name) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children ?? []) walk(child);
  };
  walk(profile.head);
  process.stdout.write(`\n${basename(file)}: ${(total / 2 ** 20).toFixed(1)} MiB allocated (sampled, freed objects included)\n`);
  process.stdout.write(`| KiB | % | allocating function (inlined callees count here) |\n|---:|---:|---|\n`);
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [name, bytes] of rows) process.stdout.write(`| ${(bytes / 1024).toFixed(0)} | ${((bytes / total) * 100).toFixed(1)}% | ${name} |\n`);
}

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8"));
  if (profile.head) {
    summarizeAllocations(file, profile);
    continue;
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  // Self time: each sample belongs to one node; timeDeltas give the time between samples.
  const { samples, timeDeltas } = profile;
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    const dt = timeDeltas[i + 1] ?? 0;
    const node = byId.get(samples[i]);
    const frame = node.callFrame;
    const name = `${frame.functionName || "(anonymous)"} ${where(frame)}`.trim();
    self.set(name, (self.get(name) ?? 0) + dt);
    total += dt;
  }
  const idle = self.get("(idle)") ?? 0;
  const busy = total - idle;
  process.stdout.write(`\n${basename(file)}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s not idle\n`);
  process.stdout.write(`| self ms | % of non-idle | function |\n|---:|---:|---|\n`);
  const rows = [...self.entries()].filter(([name]) => name !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [name, us] of rows) process.stdout.write(`| ${(us / 1000).toFixed(0)} | ${((us / busy) * 100).toFixed(1)}% | ${name} |\n`);
}
