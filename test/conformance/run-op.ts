import { keyAt } from "../helpers/conformance-keys.js";
import { sameValue } from "../helpers/conformance-values.js";
import { resolveTtl } from "../model/rules.js";
import { check, checkRead, converge, sameEntry, sameMap, sameStream } from "./checks.js";
import type { Op } from "./ops.js";
import { runWrap } from "./run-wrap.js";
import { attempt, predict, Step, type CallOp, type RunContext } from "./step.js";

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
  return refused || !found.ok ? "refused" : found.value.state;
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
  }
  const step = new Step(op, ctx);
  ctx.stats.saw(op.op, coverageState(step));
  await runCall(step);
  const written = op.op === "set" || op.op === "wrap" || op.op === "touch" ? op.key : op.op === "setMany" || op.op === "streamSet" ? op.entries.at(-1)?.[0] : undefined;
  if (written !== undefined) ctx.recent = { key: step.index(written), ns: step.ns };
}

async function runCall(step: Step): Promise<void> {
  const op: CallOp = step.op;
  const { ctx, client, options, ns } = step;
  const { model } = ctx;
  switch (op.op) {
    case "get": {
      const key = step.key(op.key);
      return checkRead(step, predict(() => model.get(ns, key)), () => client.get(key, options), sameValue);
    }
    case "getEntry": {
      const key = step.key(op.key);
      const read = async () => {
        const entry = await client.getEntry(key, options);
        if (entry !== undefined) ctx.stats.saw("getEntry served by tier", entry.tier);
        return entry;
      };
      return checkRead(step, predict(() => model.getEntry(ns, key)), read, sameEntry);
    }
    case "has": {
      const key = step.key(op.key);
      return checkRead(step, predict(() => model.has(ns, key)), () => client.has(key, options), (actual, wanted) => actual === wanted);
    }
    case "getMany": {
      const keys = op.keys.map((i) => step.key(i));
      return checkRead(step, predict(() => model.getMany(ns, keys)), () => client.getMany(keys, options), sameMap);
    }
    case "streamGet": {
      const keys = op.keys.map((i) => step.key(i));
      return checkRead(step, predict(() => model.streamGet(ns, keys)), () => collect(client.streamGet(keys, options)), sameStream);
    }
    case "set": {
      const key = step.key(op.key);
      const expected = predict(() => model.set(ns, key, op.value, op.ttl));
      return check(step, expected, await attempt(() => client.set(key, op.value, step.withTtl(op.ttl))), () => true);
    }
    case "setMany":
    case "streamSet": {
      const entries = op.entries.map(([i, value]) => [step.key(i), value] as const);
      const callOptions = step.withTtl(op.ttl);
      if (op.op === "setMany") {
        const expected = predict(() => model.setMany(ns, entries, op.ttl));
        return check(step, expected, await attempt(() => client.setMany(entries, callOptions)), () => true);
      }
      const expected = predict(() => model.streamSet(ns, entries, op.ttl));
      return check(step, expected, await attempt(() => client.streamSet(entries, callOptions)), (actual, wanted) => actual === wanted);
    }
    case "delete": {
      const key = step.key(op.key);
      await converge(step);
      const expected = predict(() => model.delete(ns, key));
      return check(step, expected, await attempt(() => client.delete(key, options)), (actual, wanted) => actual === wanted);
    }
    case "deleteMany": {
      const keys = op.keys.map((i) => step.key(i));
      await converge(step);
      const expected = predict(() => model.deleteMany(ns, keys));
      return check(step, expected, await attempt(() => client.deleteMany(keys, options)), (actual, wanted) => actual === wanted);
    }
    case "touch": {
      const key = step.key(op.key);
      await converge(step);
      const expected = predict(() => model.touch(ns, key, op.ttl));
      return check(step, expected, await attempt(() => client.touch(key, step.withTtl(op.ttl))), (actual, wanted) => actual === wanted);
    }
    case "clear": {
      const expected = predict(() => model.clear(ns));
      return check(step, expected, await attempt(() => client.clear(options)), () => true);
    }
    case "wrap":
      return runWrap(step as Step<typeof op>);
  }
}
