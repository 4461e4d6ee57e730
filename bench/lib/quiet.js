/**
 * The machine may be shared (other builds and tests running): before a
 * scenario, measure how busy the CPUs are without us, and wait a little for
 * a quieter moment. Never waits longer than `maxWaitMs`; the busy figure
 * goes into the results so a noisy run can be recognised.
 */
import { readFileSync } from "node:fs";

function cpuTimes() {
  try {
    const [line] = readFileSync("/proc/stat", "utf8").split("\n");
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = fields[3] + (fields[4] ?? 0);
    return { idle, total: fields.reduce((a, b) => a + b, 0) };
  } catch {
    return undefined;
  }
}

/** Fraction (0..1) of all CPU time that was busy over `ms`, or undefined where /proc/stat is missing. */
export async function busyFraction(ms = 1000) {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  if (!a || !b || b.total === a.total) return undefined;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

/** Waits (up to maxWaitMs) until the CPUs are less than `threshold` busy; returns the last busy fraction seen. */
export async function waitQuiet({ threshold = 0.25, maxWaitMs = 15_000, log } = {}) {
  const start = Date.now();
  let busy = await busyFraction(1000);
  let told = false;
  while (busy !== undefined && busy > threshold && Date.now() - start < maxWaitMs) {
    if (!told && log) log(`  machine ${(busy * 100).toFixed(0)}% busy with other work; waiting up to ${maxWaitMs / 1000} s for a quieter moment`);
    told = true;
    busy = await busyFraction(1000);
  }
  return busy;
}
