import { RpcError, statusName, type CacheEntry } from "../../client/index.js";
import { describeValue, sameValue } from "../helpers/conformance-values.js";
import { COHERENCE_BOUND_MS, readUntil } from "../helpers/eventually.js";
import type { EntryView } from "../model/reference-model.js";
import { describeOp } from "./ops.js";
import { attempt, describeError, predict, type Outcome, type Step } from "./step.js";

/**
 * Checks one result: an expected refusal must be an RpcError with status
 * INVALID_ARGUMENT; an expected value must come back and be `same`.
 */
export function check<A, E>(step: Step, expected: Outcome<E>, actual: Outcome<A>, same: (actual: A, expected: E) => boolean, note = ""): void {
  const suffix = note ? [note] : [];
  if (!expected.ok) {
    if (!actual.ok && RpcError.is(actual.error) && statusName(actual.error.code) === "INVALID_ARGUMENT") return;
    const got = actual.ok ? `success: ${describeValue(actual.value)}` : describeError(actual.error);
    step.fail([`expected: INVALID_ARGUMENT (${(expected.error as Error).message})`, `actual:   ${got}`, ...suffix]);
  }
  if (!actual.ok) step.fail([`expected: success${expected.value === undefined ? "" : `: ${describeValue(expected.value)}`}`, `actual:   ${describeError(actual.error)}`, ...suffix]);
  if (!same(actual.value, expected.value)) step.fail([`expected: ${describeValue(expected.value)}`, `actual:   ${describeValue(actual.value)}`, ...suffix]);
}

/**
 * Checks a read: exact where reads are coherent; else re-reads until it
 * matches, failing once the coherence bound has passed. There it reads twice,
 * since the first read may leave a local copy for the second to serve.
 */
export async function checkRead<A, E>(step: Step, expected: Outcome<E>, call: () => Promise<A>, same: (actual: A, expected: E) => boolean): Promise<void> {
  if (!expected.ok || !step.eventual) {
    check(step, expected, await attempt(call), same);
    return;
  }
  for (let i = 0; i < 2; i++) {
    const read = await readUntil(describeOp(step.op), () => attempt(call), (outcome) => outcome.ok && same(outcome.value, expected.value), step.ctx.stats.staleness);
    check(step, expected, read.value, same, read.matched ? "" : `(still different after re-reading for ${read.waitedMs} ms; the coherence bound is ${COHERENCE_BOUND_MS} ms)`);
  }
}

/**
 * Where reads lag (several instances, local tiers), waits until a plain get
 * of each key through the step's client shows the model's value, so that a
 * call whose result depends on the state (delete, touch, wrap) sees what the
 * model sees. A call the model refuses is left alone.
 */
export async function converge(step: Step, keys: readonly number[] = step.keyIndexes()): Promise<void> {
  if (!step.eventual) return;
  for (const index of new Set(keys)) {
    const key = step.key(index);
    const expected = predict(() => step.ctx.model.get(step.ns, key));
    if (!expected.ok) return;
    const read = await readUntil(`get before ${describeOp(step.op)}`, () => step.client.get(key, step.options), (value) => sameValue(value, expected.value), step.ctx.stats.staleness);
    if (!read.matched) {
      step.fail([`before the step, a get of k#${step.index(index)} through this client still read ${describeValue(read.value)} after ${read.waitedMs} ms, not ${describeValue(expected.value)}`]);
    }
  }
}

/** Maps equal key by key, order aside. */
export function sameMap(actual: ReadonlyMap<string, unknown>, expected: ReadonlyMap<string, unknown>): boolean {
  if (actual.size !== expected.size) return false;
  for (const [key, value] of expected) if (!actual.has(key) || !sameValue(actual.get(key), value)) return false;
  return true;
}

/** getEntry results: both misses, or the same value and ttlRemainingMs. */
export function sameEntry(actual: CacheEntry<unknown> | undefined, expected: EntryView | undefined): boolean {
  if (actual === undefined || expected === undefined) return actual === expected;
  return sameValue(actual.value, expected.value) && actual.ttlRemainingMs === expected.ttlRemainingMs;
}

/** streamGet results as [key, value] pairs: each distinct key exactly once, with the model's value. */
export function sameStream(pairs: readonly (readonly [string, unknown])[], expected: ReadonlyMap<string, unknown>): boolean {
  const seen = new Map<string, unknown>();
  for (const [key, value] of pairs) {
    if (seen.has(key)) return false;
    seen.set(key, value);
  }
  return sameMap(seen, expected);
}
