import { RpcError, statusName, type CacheEntry } from "../../client/index.js";
import { describeValue, sameValue } from "../helpers/conformance-values.js";
import { readUntil } from "../helpers/eventually.js";
import type { InstanceView } from "../helpers/conformance-deployments.js";
import type { EntryView, KeyState } from "../model/reference-model.js";
import { NOT_RETURNED, OneOf } from "./one-of.js";
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

function lagNote(step: Step, waitedMs: number): string {
  const since = step.afterFault ? " since its first attempt, or since Redis answered again if later" : "";
  return `(still different after re-reading for ${waitedMs} ms${since}; the bound is ${step.readBound.ms} ms)`;
}

/**
 * Checks a read: exact where reads are coherent; else re-reads until it
 * matches (an error, during a fault, is one more read that did not match),
 * failing once the bound has passed. There it reads twice, since the first
 * read may leave a local copy for the second to serve.
 */
export async function checkRead<A, E>(step: Step, expected: Outcome<E>, call: () => Promise<A>, same: (actual: A, expected: E) => boolean): Promise<void> {
  if (!expected.ok || !step.eventual) {
    check(step, expected, await attempt(call), same);
    return;
  }
  for (let i = 0; i < 2; i++) {
    const read = await readUntil(describeOp(step.op), () => attempt(call), (outcome) => outcome.ok && same(outcome.value, expected.value), step.staleness, step.readBound);
    check(step, expected, read.value, same, read.matched ? "" : lagNote(step, read.waitedMs));
  }
}

/**
 * Where reads lag (several instances, local tiers), waits until a plain get
 * of each key through the step's client shows a value the model allows, so
 * that a call whose result depends on the state (delete, touch, wrap) sees
 * what the model sees. A call the model refuses is left alone.
 */
export async function converge(step: Step, keys: readonly number[] = step.keyIndexes()): Promise<void> {
  if (!step.eventual) return;
  for (const index of new Set(keys)) {
    const key = step.key(index);
    const expected = predict(() => new OneOf(step.ctx.possible.each(step.ns, key, (model) => model.get(step.ns, key))));
    if (!expected.ok) return;
    const matches = (outcome: Outcome<unknown>) => outcome.ok && expected.value.some((value) => sameValue(outcome.value, value));
    const read = await readUntil(`get before ${describeOp(step.op)}`, () => attempt(() => step.client.get(key, step.options)), matches, step.staleness, step.readBound);
    if (!read.matched) {
      const got = read.value.ok ? describeValue(read.value.value) : describeError(read.value.error);
      step.fail([`before the step, a get of k#${step.index(index)} through this client still read ${got} after ${read.waitedMs} ms, not ${describeValue(expected.value)}`]);
    }
  }
}

/**
 * True when what an instance holds (stale values too) is what the model's
 * `found` says the key holds; with `timed`, also its times: the time left
 * before it goes stale (the model's getEntry `entry`), and its expiry, by
 * which an eager refresh's shared lease tells whether it was written since
 * (a touch moves it even where the fresh time stays).
 */
function sameView(view: InstanceView | undefined, found: KeyState, timed?: { entry: EntryView | undefined }): boolean {
  if (found.state === "absent" || view === undefined) return found.state === "absent" && view === undefined;
  if (view.stale !== (found.state === "stale") || !sameValue(view.value, found.entry.value)) return false;
  if (timed === undefined) return true;
  const goneAt = found.entry.goneAt === Infinity ? 0 : found.entry.goneAt;
  return view.expiresAt === goneAt && (found.state === "stale" || view.freshRemainingMs === timed.entry?.ttlRemainingMs);
}

/**
 * Before a wrap, where reads lag: {@link converge}, then waits until the
 * server instance the step's client calls holds, stale values included, a
 * state the key may be in. A get cannot tell, since it misses a stale value:
 * an instance that has not yet heard of a change made through the other one
 * (a delete, a touch, a write) may still hold the stale value it replaced,
 * which wrap, unlike get, returns.
 */
export async function convergeForWrap(step: Step, index: number): Promise<void> {
  await converge(step, [index]);
  if (!step.eventual) return;
  const key = step.key(index);
  // With eagerRefresh, wrap's outcome depends on the time a fresh value has left, and on the expiry its instance holds
  // (the shared lease's check), which a touch through the other instance changes without changing the value: wait for
  // the client's copy and the instance to show those too.
  const timed = step.op.op === "wrap" && step.op.eagerRefresh !== undefined;
  const expected = predict(() => new OneOf(step.ctx.possible.each(step.ns, key, (model) => ({ found: model.lookup(step.ns, key), entry: model.getEntry(step.ns, key) }))));
  if (!expected.ok) return;
  if (timed) await convergeEntry(step, index, expected.value.values.map(({ entry }) => entry));
  const { deployment } = step.ctx;
  const client = step.op.client % deployment.clients.length;
  const matches = (outcome: Outcome<InstanceView | undefined>) =>
    outcome.ok && expected.value.some(({ found, entry }) => sameView(outcome.value, found, timed ? { entry } : undefined));
  const read = await readUntil(`instance view before ${describeOp(step.op)}`, () => attempt(() => deployment.instanceView(client, step.ns, key)), matches, step.staleness, step.readBound);
  if (!read.matched) {
    const got = read.value.ok ? describeValue(read.value.value) : describeError(read.value.error);
    step.fail([`before the step, the server instance of this client still held ${got} for k#${step.index(index)} after ${read.waitedMs} ms (stale values included)`]);
  }
}

/** Waits until a getEntry of the key through the step's client shows one of `entries` (value and time left). */
async function convergeEntry(step: Step, index: number, entries: readonly (EntryView | undefined)[]): Promise<void> {
  const key = step.key(index);
  const matches = (outcome: Outcome<CacheEntry<unknown> | undefined>) => outcome.ok && entries.some((entry) => sameEntry(outcome.value, entry));
  const read = await readUntil(`getEntry before ${describeOp(step.op)}`, () => attempt(() => step.client.getEntry(key, step.options)), matches, step.staleness, step.readBound);
  if (!read.matched) {
    const got = read.value.ok ? describeValue(read.value.value) : describeError(read.value.error);
    step.fail([`before the step, a getEntry of k#${step.index(index)} through this client still read ${got} after ${read.waitedMs} ms, not ${entries.map((e) => describeValue(e)).join(" or ")}`]);
  }
}

/** getEntry results: both misses, or the same value and ttlRemainingMs. */
export function sameEntry(actual: CacheEntry<unknown> | undefined, expected: EntryView | undefined): boolean {
  if (actual === undefined || expected === undefined) return actual === expected;
  return sameValue(actual.value, expected.value) && actual.ttlRemainingMs === expected.ttlRemainingMs;
}

/** getMany results: the keys returned, each with a value it may hold, and none left out that must be there. */
export function sameMap(actual: ReadonlyMap<string, unknown>, expected: ReadonlyMap<string, OneOf<unknown>>): boolean {
  for (const key of actual.keys()) if (!expected.has(key)) return false;
  for (const [key, values] of expected) {
    const got = actual.has(key) ? actual.get(key) : NOT_RETURNED;
    if (!values.some((value) => sameValue(got, value))) return false;
  }
  return true;
}

/** streamGet results as [key, value] pairs: each distinct key exactly once, with a value it may hold. */
export function sameStream(pairs: readonly (readonly [string, unknown])[], expected: ReadonlyMap<string, OneOf<unknown>>): boolean {
  const seen = new Map<string, unknown>();
  for (const [key, value] of pairs) {
    if (seen.has(key)) return false;
    seen.set(key, value);
  }
  if (seen.size !== expected.size) return false;
  for (const [key, values] of expected) if (!seen.has(key) || !values.some((value) => sameValue(seen.get(key), value))) return false;
  return true;
}
