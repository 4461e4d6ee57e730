import { describeValue, sameValue } from "../helpers/conformance-values.js";
import { COHERENCE_BOUND_MS, readUntil } from "../helpers/eventually.js";
import { check, converge, sameEntry } from "./checks.js";
import type { Op } from "./ops.js";
import { attempt, predict, type Step } from "./step.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A wrap step: the value it returns, how often the loader ran, and, when a
 * stale value was served, that one background refresh stores the loader's
 * value (waited for with getEntry, up to the coherence bound, before the
 * next step).
 */
export async function runWrap(step: Step<Extract<Op, { op: "wrap" }>>): Promise<void> {
  const { op, ctx } = step;
  const key = step.key(op.key);
  await converge(step);
  let calls = 0;
  let signal = () => {};
  const called = new Promise<void>((resolve) => (signal = resolve));
  const loader = () => {
    calls++;
    signal();
    return op.value;
  };
  const options = { ...step.withTtl(op.ttl), ...(op.grace !== undefined && { grace: op.grace }) };
  const expected = predict(() => ctx.model.wrap(step.ns, key, op.value, { ttl: op.ttl, grace: op.grace }));
  const actual = await attempt(() => step.client.wrap(key, loader, options));
  check(step, expected.ok ? { ok: true, value: expected.value.value } : expected, actual, sameValue);
  if (!expected.ok) return;
  const loaderRun = expected.value.loader;
  if (loaderRun === "not-called" && calls !== 0) step.fail([`a fresh value was there, yet the loader ran ${calls} time(s)`]);
  if (loaderRun === "called" && calls !== 1) step.fail([`on a miss the loader must run once; it ran ${calls} time(s)`]);
  if (loaderRun !== "refresh") return;
  await Promise.race([called, sleep(COHERENCE_BOUND_MS)]);
  if (calls !== 1) step.fail([`the stale value was returned, but the background refresh ran the loader ${calls} time(s) within ${COHERENCE_BOUND_MS} ms (expected once)`]);
  const refreshed = ctx.model.getEntry(step.ns, key);
  const read = await readUntil(`getEntry after refresh: ${op.op}`, () => step.client.getEntry(key, step.options), (entry) => sameEntry(entry, refreshed), ctx.stats.staleness);
  if (!read.matched) {
    step.fail([
      `the stale value was returned, but the refreshed value did not land within ${read.waitedMs} ms`,
      `getEntry expected: ${describeValue(refreshed)}`,
      `getEntry actual:   ${describeValue(read.value)}`,
    ]);
  }
}
