import { keyAt } from "../helpers/conformance-keys.js";
import { sameValue } from "../helpers/conformance-values.js";
import type { ReferenceCache } from "../model/reference-model.js";
import { resolveTtl } from "../model/rules.js";
import { check, checkRead, converge, sameEntry, sameMap, sameStream } from "./checks.js";
import { among, NOT_RETURNED, OneOf } from "./one-of.js";
import { describeOp, type Op, type Tags } from "./ops.js";
import { runWrap } from "./run-wrap.js";
import { attempt, predict, Step, type CallOp, type Outcome, type RunContext } from "./step.js";

export type { RunContext } from "./step.js";

/** Real time a "settle" step lets pass where reads may lag, so that invalidations land and local tiers start serving. */
const SETTLE_MS = 30;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item);
  return items;
}

/** Moves the fake clock to an expiry boundary (±1 ms); a stale boundary is preferably the one of the key last written. */
function advanceTo(op: Extract<Op, { op: "advanceTo" }>, ctx: RunContext): void {
  const { model, deployment, recent } = ctx;
  const found = recent && predict(() => model.lookup(recent.ns, keyAt(ctx.pool, recent.key)));
  const recentStaleAt = found?.ok && found.value.state === "fresh" && found.value.entry.goneAt > found.value.entry.freshUntil ? found.value.entry.freshUntil : undefined;
  const times = op.staleOnly && recentStaleAt !== undefined ? [recentStaleAt] : model.boundaries(op.staleOnly);
  ctx.stats.saw(op.staleOnly ? "advanceTo stale boundary" : "advanceTo boundary", times.length === 0 ? "none there" : "moved");
  if (times.length === 0) return;
  const target = times[op.boundary % times.length]! + op.offset;
  const now = deployment.clock.now();
  if (target > now) deployment.clock.advance(target - now);
}

/** The state the step's (first) key is in, or "refused" when the model refuses the call, for the coverage summary. */
function coverageState(step: Step): string {
  const { op, ctx } = step;
  const refused = !predict(() => [ctx.model.keys(step.ns), "ttl" in op && resolveTtl(op.ttl), op.op === "wrap" && resolveTtl(op.grace)]).ok;
  const first = step.keyIndexes()[0];
  if (first === undefined) return refused ? "refused" : "no key";
  const found = predict(() => ctx.model.lookup(step.ns, step.key(first)));
  if (refused || !found.ok) return "refused";
  return ctx.possible.isUncertain(step.ns, step.key(first)) ? "uncertain" : found.value.state;
}

/** Runs one step on the model and on the deployment; throws a divergence report when they differ. */
export async function runOp(op: Op, ctx: RunContext): Promise<void> {
  switch (op.op) {
    case "advance":
      ctx.deployment.clock.advance(op.ms);
      return;
    case "advanceTo":
      advanceTo(op, ctx);
      return;
    case "settle":
      if (ctx.deployment.eventual) await sleep(SETTLE_MS);
      return;
    case "fault":
      if (ctx.faults === undefined) throw new Error(`${describeOp(op)}: this deployment cannot suffer faults`);
      ctx.stats.sawFault(op.fault.kind);
      await ctx.faults.begin(op.fault);
      return;
  }
  const step = new Step(op, ctx);
  ctx.stats.saw(op.op, coverageState(step));
  await runCall(step);
  const written = op.op === "set" || op.op === "wrap" || op.op === "touch" ? op.key : op.op === "setMany" || op.op === "streamSet" ? op.entries.at(-1)?.[0] : undefined;
  if (written !== undefined) ctx.recent = { key: step.index(written), ns: step.ns };
}

/** What the model gives in each state `key` may be in (refusing the call as the model does). */
function eachState<T>(step: Step, key: string, call: (model: ReferenceCache) => T): Outcome<OneOf<T>> {
  return predict(() => OneOf.distinct(step.ctx.possible.each(step.ns, key, call)));
}

/**
 * What a batch read gives, per distinct key, in each state the key may be
 * in; `whole` checks the call as a whole first (refusing it as the model does).
 */
function eachKey<T>(step: Step, keys: readonly string[], whole: (model: ReferenceCache) => unknown, one: (model: ReferenceCache, key: string) => T): Outcome<Map<string, OneOf<T>>> {
  return predict(() => {
    step.ctx.possible.once(whole);
    return new Map([...new Set(keys)].map((key) => [key, OneOf.distinct(step.ctx.possible.each(step.ns, key, (model) => one(model, key)))]));
  });
}

/**
 * A call that changes `keys()` (evaluated once the model accepts the call):
 * checks its result, then applies `change` to the possible states, as done,
 * or with an unknown outcome when it failed with UNAVAILABLE or
 * DEADLINE_EXCEEDED because of a fault.
 */
async function runChange<A, E>(
  step: Step,
  expected: Outcome<E>,
  call: () => Promise<A>,
  same: (actual: A, expected: E) => boolean,
  keys: () => readonly string[],
  change: (model: ReferenceCache) => unknown,
): Promise<void> {
  const started = Date.now();
  const actual = await attempt(call);
  if (expected.ok && !actual.ok && step.excused(started, actual.error)) {
    step.ctx.possible.apply(step.ns, keys(), change, "unknown");
    step.ctx.stats.sawUnknownOutcome(step.op.op);
    return;
  }
  check(step, expected, actual, same);
  if (expected.ok) step.ctx.possible.apply(step.ns, keys(), change, "done");
}

/** Call options with the step's tags, when it gives some. */
function withTags<O extends object>(options: O, tags: Tags): O & { tags?: readonly string[] } {
  return tags === undefined ? options : { ...options, tags };
}

const equal = <T>(actual: T, expected: T) => actual === expected;
const anything = () => true;

async function runCall(step: Step): Promise<void> {
  const op: CallOp = step.op;
  const { ctx, client, options, ns } = step;
  const { possible } = ctx;
  switch (op.op) {
    case "get": {
      const key = step.key(op.key);
      return checkRead(step, eachState(step, key, (m) => m.get(ns, key)), () => client.get(key, options), among(sameValue));
    }
    case "getEntry": {
      const key = step.key(op.key);
      const read = async () => {
        const entry = await client.getEntry(key, options);
        if (entry !== undefined) ctx.stats.saw("getEntry served by tier", entry.tier);
        return entry;
      };
      return checkRead(step, eachState(step, key, (m) => m.getEntry(ns, key)), read, among(sameEntry));
    }
    case "has": {
      const key = step.key(op.key);
      return checkRead(step, eachState(step, key, (m) => m.has(ns, key)), () => client.has(key, options), among(equal));
    }
    case "getMany": {
      const keys = op.keys.map((i) => step.key(i));
      const one = (m: ReferenceCache, key: string) => {
        const found = m.getMany(ns, [key]);
        return found.has(key) ? found.get(key) : NOT_RETURNED;
      };
      return checkRead(step, eachKey(step, keys, (m) => m.getMany(ns, keys), one), () => client.getMany(keys, options), sameMap);
    }
    case "streamGet": {
      const keys = op.keys.map((i) => step.key(i));
      const expected = eachKey(step, keys, (m) => m.streamGet(ns, keys), (m, key) => m.streamGet(ns, [key]).get(key));
      return checkRead(step, expected, () => collect(client.streamGet(keys, options)), sameStream);
    }
    case "set": {
      const key = step.key(op.key);
      const change = (m: ReferenceCache) => m.set(ns, key, op.value, op.ttl, op.tags);
      return runChange(step, predict(() => possible.once(change)), () => client.set(key, op.value, withTags(step.withTtl(op.ttl), op.tags)), anything, () => [key], change);
    }
    case "invalidateTags": {
      const hides = predict(() => ctx.model.keys(ns).filter((key) => ctx.model.lookup(ns, key).state !== "absent" && ctx.model.peek(ns, key)!.tags.some((tag) => op.tags.includes(tag))).length);
      ctx.stats.saw("invalidateTags hides", !hides.ok ? "refused" : hides.value === 0 ? "nothing" : "some values");
      const change = (m: ReferenceCache) => m.invalidateTags(ns, op.tags);
      return runChange(step, predict(() => possible.once(change)), () => client.invalidateTags(op.tags, options), anything, () => possible.keys(ns), change);
    }
    case "setMany":
    case "streamSet": {
      const entries = op.entries.map(([i, value]) => [step.key(i), value] as const);
      const keys = () => entries.map(([key]) => key);
      const callOptions = withTags(step.withTtl(op.ttl), op.tags);
      if (op.op === "setMany") {
        const change = (m: ReferenceCache) => m.setMany(ns, entries, op.ttl, op.tags);
        return runChange(step, predict(() => possible.once(change)), () => client.setMany(entries, callOptions), anything, keys, change);
      }
      const change = (m: ReferenceCache) => m.streamSet(ns, entries, op.ttl, op.tags);
      return runChange(step, predict(() => possible.once(change)), () => client.streamSet(entries, callOptions), equal, keys, change);
    }
    case "delete": {
      const key = step.key(op.key);
      await converge(step);
      const expected = eachState(step, key, (m) => m.delete(ns, key));
      return runChange(step, expected, () => client.delete(key, options), among(equal), () => [key], (m) => m.delete(ns, key));
    }
    case "deleteMany": {
      const keys = op.keys.map((i) => step.key(i));
      await converge(step);
      // The count is a sum over the distinct keys of 0 or 1 each: every total between the least and the most is possible.
      const expected = predict(() => {
        const counts = eachKey(step, keys, (m) => m.deleteMany(ns, keys), (m, key) => m.deleteMany(ns, [key]));
        if (!counts.ok) throw counts.error;
        const [least, most] = [...counts.value.values()].reduce(([lo, hi], n) => [lo + Math.min(...n.values), hi + Math.max(...n.values)], [0, 0]);
        return new OneOf(Array.from({ length: most - least + 1 }, (_, i) => least + i));
      });
      return runChange(step, expected, () => client.deleteMany(keys, options), among(equal), () => keys, (m) => m.deleteMany(ns, keys));
    }
    case "touch": {
      const key = step.key(op.key);
      await converge(step);
      const expected = eachState(step, key, (m) => m.touch(ns, key, op.ttl));
      return runChange(step, expected, () => client.touch(key, step.withTtl(op.ttl)), among(equal), () => [key], (m) => m.touch(ns, key, op.ttl));
    }
    case "clear": {
      const change = (m: ReferenceCache) => m.clear(ns);
      return runChange(step, predict(() => possible.once(change)), () => client.clear(options), anything, () => possible.keys(ns), change);
    }
    case "wrap":
      return runWrap(step as Step<typeof op>);
  }
}
