/**
 * Runs micro-benchmarks (see children/micro.js): each in a fresh child
 * process, so every measured loop sees one implementation only. In quick
 * (smoke) mode one child runs them all, to save process start-ups.
 */
import { startChild } from "./child.js";

let shared;

async function withChild(reuse, label, fn) {
  if (reuse) {
    shared ??= await startChild("micro", {}, { label: "micro-shared" });
    return fn(shared);
  }
  const child = await startChild("micro", {}, { label });
  try {
    return await fn(child);
  } finally {
    await child.stop();
  }
}

/** Runs one micro-benchmark; `reuse` shares one child between calls (quick mode). */
export function microRun(config, { reuse = false } = {}) {
  return withChild(reuse, `micro-${config.bench.replace(/[^a-z0-9-]/gi, "_")}`, (child) => child.call("run", { seed: 42, ...config }));
}

/** Stops the shared child, if any. */
export async function microDone() {
  await shared?.stop();
  shared = undefined;
}
