import type { WrapContext } from "../../client/index.js";
import { describeValue, sameValue } from "../helpers/conformance-values.js";
import { COHERENCE_BOUND_MS, readUntil } from "../helpers/eventually.js";
import type { ReferenceCache, WrapOutcome } from "../model/reference-model.js";
import { check, convergeForWrap, sameEntry } from "./checks.js";
import { OneOf } from "./one-of.js";
import type { Op } from "./ops.js";
import { attempt, predict, type Outcome, type Step } from "./step.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type WrapStep = Step<Extract<Op, { op: "wrap" }>>;

/** Whether `calls` loader runs by the time wrap returned fit what the model says wrap did. */
function loaderFits(loader: WrapOutcome["loader"], calls: number): boolean {
  if (loader === "not-called") return calls === 0;
  if (loader === "called") return calls === 1;
  return calls <= 1; // the background refresh may have started already
}

/**
 * A wrap step: the value it returns, how often the loader ran, and, when a
 * stale value was served, that one background refresh stores the loader's
 * value (waited for with getEntry, up to the coherence bound, before the
 * next step).
 *
 * Where the key's state is uncertain, or a fault may have kept wrap from
 * the service, what it returned must fit one of the states the key may be
 * in, or be the loader's value from a single run ("if the service is
 * unavailable, wrap runs the loader and returns its result uncached", while
 * a fault may excuse it); the key may then hold whatever any of those left.
 */
export async function runWrap(step: WrapStep): Promise<void> {
  const { op, ctx } = step;
  const key = step.key(op.key);
  await convergeForWrap(step, op.key);
  let calls = 0;
  let signal = () => {};
  const called = new Promise<void>((resolve) => (signal = resolve));
  const loader = (ctx: WrapContext) => {
    calls++;
    signal();
    if (op.loaderContext?.ttl !== undefined) ctx.setTtl(op.loaderContext.ttl);
    if (op.loaderContext?.skip) ctx.skip();
    return op.value;
  };
  const options = { ...step.withTtl(op.ttl), ...(op.grace !== undefined && { grace: op.grace }), ...(op.eagerRefresh !== undefined && { eagerRefresh: op.eagerRefresh }) };
  const modelOptions = { ttl: op.ttl, grace: op.grace, eagerRefresh: op.eagerRefresh, loaderContext: op.loaderContext };
  const change = (model: ReferenceCache) => model.wrap(step.ns, key, op.value, modelOptions);
  const expected = predict(() => OneOf.distinct(ctx.possible.each(step.ns, key, change)));
  const started = Date.now();
  // wrap writes a loaded value in the background: the model's next step sees it once settled() says it is written.
  const actual = await attempt(async () => {
    const value = await step.client.wrap(key, loader, options);
    await step.client.settled();
    return value;
  });
  if (!expected.ok) return check(step, expected, actual, () => true);
  const disrupted = step.disrupted(started);
  const only = expected.value.only;
  if (only !== undefined && !disrupted) return checkKnown(step, only, actual, calls, called, change);

  let refreshing = false;
  if (actual.ok) {
    const fits = expected.value.values.filter((outcome) => sameValue(actual.value, outcome.value) && loaderFits(outcome.loader, calls));
    const uncached = disrupted && calls === 1 && sameValue(actual.value, op.value);
    if (fits.length === 0 && !uncached) step.fail([`expected: ${describeValue(expected.value)}`, `actual:   ${describeValue(actual.value)}, the loader ran ${calls} time(s)`]);
    refreshing = fits.some((outcome) => outcome.loader === "refresh");
  } else if (!step.excused(started, actual.error)) {
    check(step, { ok: true, value: expected.value }, actual, () => true);
  }
  ctx.possible.apply(step.ns, [key], change, disrupted ? "unknown" : "done");
  // The loader's value may have been stored: by an uncached run's write, or by a background refresh.
  if (disrupted || refreshing) {
    const store = (model: ReferenceCache) => (model.delete(step.ns, key), model.wrap(step.ns, key, op.value, modelOptions));
    ctx.possible.apply(step.ns, [key], store, "unknown");
  }
  // Counted when wrap failed, or ran the loader (whose value it then tried to store) while a fault was about.
  if (disrupted && (!actual.ok || calls > 0)) ctx.stats.sawUnknownOutcome(op.op);
}

/** A wrap whose key's state is known, with no fault about: exactly what the model says, the refresh included. */
async function checkKnown(step: WrapStep, expected: WrapOutcome, actual: Outcome<unknown>, calls: number, called: Promise<void>, change: (model: ReferenceCache) => unknown): Promise<void> {
  const { op, ctx } = step;
  const key = step.key(op.key);
  check(step, { ok: true, value: expected.value }, actual, sameValue);
  ctx.possible.apply(step.ns, [key], change, "done");
  if (expected.loader === "not-called" && calls !== 0) step.fail([`a fresh value was there, yet the loader ran ${calls} time(s)`]);
  if (expected.loader === "called" && calls !== 1) step.fail([`on a miss the loader must run once; it ran ${calls} time(s)`]);
  if (expected.loader !== "refresh") return;
  await Promise.race([called, sleep(COHERENCE_BOUND_MS)]);
  if (calls !== 1) step.fail([`the stale value was returned, but the background refresh ran the loader ${calls} time(s) within ${COHERENCE_BOUND_MS} ms (expected once)`]);
  const refreshed = ctx.model.getEntry(step.ns, key);
  const read = await readUntil(`getEntry after refresh: ${op.op}`, () => step.client.getEntry(key, step.options), (entry) => sameEntry(entry, refreshed), step.staleness, step.readBound);
  if (!read.matched) {
    step.fail([
      `the stale value was returned, but the refreshed value did not land within ${read.waitedMs} ms`,
      `getEntry expected: ${describeValue(refreshed)}`,
      `getEntry actual:   ${describeValue(read.value)}`,
    ]);
  }
}
