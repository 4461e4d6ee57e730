import { RpcError, statusName, type CacheClient, type CacheEntry } from "../../client/index.js";
import type { ClientUnderTest, Deployment, DeploymentKind } from "../helpers/conformance-deployments.js";
import { keyAt } from "../helpers/conformance-keys.js";
import { describeValue, sameValue } from "../helpers/conformance-values.js";
import { COHERENCE_BOUND_MS, readUntil } from "../helpers/eventually.js";
import { InvalidArgument, type EntryView, type ReferenceCache } from "../model/reference-model.js";
import { hasLoneSurrogate, resolveTtl } from "../model/rules.js";
import type { KnownDivergence } from "./known-divergences.js";
import { describeOp, RECENT, type Ms, type Op } from "./ops.js";
import type { RunStats } from "./run-stats.js";

/** Everything a step needs: the deployment, the model on the same clock, the run's keys. */
export interface RunContext {
  readonly deployment: Deployment;
  readonly model: ReferenceCache;
  readonly pool: readonly string[];
  readonly tolerated: ReadonlySet<KnownDivergence>;
  readonly stats: RunStats;
  /** The key (pool index) and namespace last written: what {@link RECENT} names. */
  recent?: { readonly key: number; readonly ns: string };
}

type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

type CallOp = Exclude<Op, { op: "advance" } | { op: "advanceTo" } | { op: "settle" }>;

/** Real time a "settle" step lets pass where reads may lag, so that invalidations land and local tiers start serving. */
const SETTLE_MS = 30;

/** A call being checked: who sends it, to which namespace, and how to report a divergence. */
class Step {
  readonly who: ClientUnderTest;
  readonly client: CacheClient;
  /** The namespace as the model sees it (the client's own when the call names none). */
  readonly ns: string;
  /** Call options naming the op's namespace, if it names one. */
  readonly options: { namespace?: string };

  constructor(
    readonly op: CallOp,
    readonly ctx: RunContext,
  ) {
    const clients = ctx.deployment.clients;
    this.who = clients[op.client % clients.length]!;
    this.client = this.who.client;
    const recentNs = "key" in op && op.key === RECENT ? ctx.recent?.ns : undefined;
    const ns = recentNs ?? op.ns;
    this.ns = ns ?? this.who.namespace;
    this.options = ns === undefined ? {} : { namespace: ns };
  }

  /** The pool index a step's key index names ({@link RECENT}: the key last written). */
  index(index: number): number {
    return index === RECENT ? (this.ctx.recent?.key ?? 0) : index;
  }

  key(index: number): string {
    return keyAt(this.ctx.pool, this.index(index));
  }

  /** A TTL as sent: rounded up here, or an invalid one made -1, when those divergences are tolerated. */
  ttl(ms: Ms): Ms {
    if (ms === undefined) return ms;
    const valid = validMs(ms);
    if (this.ctx.tolerated.has("fractional-ttl") && valid) return Math.ceil(ms);
    if (this.ctx.tolerated.has("ttl-range-error") && !valid && !Number.isInteger(ms)) return -1;
    return ms;
  }

  get eventual(): boolean {
    return this.ctx.deployment.eventual;
  }

  /** Throws a divergence report: the step, the keys it names, what the model says of them, and `lines`. */
  fail(lines: readonly string[], keys: readonly number[] = []): never {
    const model = this.ctx.model;
    const now = this.ctx.deployment.clock.now();
    const report = [
      `divergence from the reference model at ${describeOp(this.op)}`,
      `  client: ${this.who.label}; namespace: ${JSON.stringify(this.ns)}`,
      ...lines.map((line) => `  ${line}`),
    ];
    for (const index of [...new Set(keys.map((i) => this.index(i)))]) {
      const key = this.key(index);
      let state: string;
      try {
        const found = model.lookup(this.ns, key);
        if (found.state === "absent") state = "absent";
        else {
          const { value, freshUntil, goneAt } = found.entry;
          const times = freshUntil === Infinity ? "never expires" : found.state === "fresh" ? `fresh for ${freshUntil - now} ms more, then stale for ${goneAt - freshUntil} ms` : `stale for ${goneAt - now} ms more`;
          state = `${found.state}, ${times}: ${describeValue(value)}`;
        }
      } catch (err) {
        state = `refused (${(err as Error).message})`;
      }
      report.push(`  model after the step: k#${index} ${showKey(key)} → ${state}`);
    }
    throw new Error(report.join("\n"));
  }
}

function showKey(key: string): string {
  const json = JSON.stringify(key);
  return json.length <= 90 ? json : `${json.slice(0, 70)}…" (${key.length} UTF-16 units, ${Buffer.byteLength(key, "utf8")} UTF-8 bytes)`;
}

function predict<T>(compute: () => T): Outcome<T> {
  try {
    return { ok: true, value: compute() };
  } catch (err) {
    if (err instanceof InvalidArgument) return { ok: false, error: err };
    throw err;
  }
}

async function attempt<T>(call: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    return { ok: false, error };
  }
}

function describeError(error: unknown): string {
  if (error instanceof RpcError) return `RpcError ${statusName(error.code)}: ${error.details}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/**
 * Checks one result: an expected refusal must be an RpcError with status
 * INVALID_ARGUMENT; an expected value must come back and be `same`.
 */
function check<A, E>(step: Step, keys: readonly number[], expected: Outcome<E>, actual: Outcome<A>, same: (actual: A, expected: E) => boolean, note = ""): void {
  const suffix = note ? [note] : [];
  if (!expected.ok) {
    if (!actual.ok && RpcError.is(actual.error) && statusName(actual.error.code) === "INVALID_ARGUMENT") return;
    const got = actual.ok ? `success: ${describeValue(actual.value)}` : describeError(actual.error);
    step.fail([`expected: INVALID_ARGUMENT (${(expected.error as Error).message})`, `actual:   ${got}`, ...suffix], keys);
  }
  if (!actual.ok) step.fail([`expected: success${expected.value === undefined ? "" : `: ${describeValue(expected.value)}`}`, `actual:   ${describeError(actual.error)}`, ...suffix], keys);
  if (!same(actual.value, expected.value)) step.fail([`expected: ${describeValue(expected.value)}`, `actual:   ${describeValue(actual.value)}`, ...suffix], keys);
}

/** A read: exact where reads are coherent, else re-read until it matches within the coherence bound. */
async function checkRead<A, E>(step: Step, keys: readonly number[], expected: Outcome<E>, call: () => Promise<A>, same: (actual: A, expected: E) => boolean): Promise<void> {
  if (!expected.ok || !step.eventual) {
    check(step, keys, expected, await attempt(call), same);
    return;
  }
  // Read twice: the first read may leave a local copy, which the second then serves.
  for (let i = 0; i < 2; i++) {
    const read = await readUntil(describeOp(step.op), () => attempt(call), (outcome) => outcome.ok && same(outcome.value, expected.value), step.ctx.stats.staleness);
    check(step, keys, expected, read.value, same, read.matched ? "" : `(still different after re-reading for ${read.waitedMs} ms; the coherence bound is ${COHERENCE_BOUND_MS} ms)`);
  }
}

/**
 * Where reads lag (several instances, local tiers), waits until a plain get
 * of each key through this client shows the model's value, so that a call
 * whose result depends on the state (delete, touch, wrap) sees what the
 * model sees. Keys the call will refuse are left alone.
 */
async function converge(step: Step, keys: readonly number[]): Promise<void> {
  if (!step.eventual) return;
  for (const index of new Set(keys)) {
    const key = step.key(index);
    const expected = predict(() => step.ctx.model.get(step.ns, key));
    if (!expected.ok) return;
    const read = await readUntil(`get before ${describeOp(step.op)}`, () => step.client.get(key, step.options), (value) => sameValue(value, expected.value), step.ctx.stats.staleness);
    if (!read.matched) {
      step.fail([`before the step, a get of k#${step.index(index)} through this client still read ${describeValue(read.value)} after ${read.waitedMs} ms, not ${describeValue(expected.value)}`], keys);
    }
  }
}

function sameMap(actual: ReadonlyMap<string, unknown>, expected: ReadonlyMap<string, unknown>): boolean {
  if (actual.size !== expected.size) return false;
  for (const [key, value] of expected) if (!actual.has(key) || !sameValue(actual.get(key), value)) return false;
  return true;
}

function sameEntry(step: Step, key: string) {
  return (actual: CacheEntry<unknown> | undefined, expected: EntryView | undefined): boolean => {
    if (actual === undefined || expected === undefined) return actual === expected;
    if (!sameValue(actual.value, expected.value)) return false;
    if (actual.ttlRemainingMs === expected.ttlRemainingMs) return true;
    if (step.ctx.tolerated.has("local-ttl-remaining") && actual.tier === "client" && actual.ttlRemainingMs === 0) return true;
    if (!step.ctx.tolerated.has("grace-ttl-remaining")) return false;
    const found = step.ctx.model.lookup(step.ns, key);
    return found.state === "fresh" && actual.ttlRemainingMs === found.entry.goneAt - step.ctx.deployment.clock.now();
  };
}

/** Stream results as [key, value] pairs; each distinct key must come exactly once. */
function sameStream(step: Step, keys: readonly string[]) {
  return (pairs: readonly (readonly [string, unknown])[], expected: ReadonlyMap<string, unknown>): boolean => {
    const seen = new Map<string, unknown>();
    for (const [key, value] of pairs) {
      if (seen.has(key)) {
        if (step.ctx.tolerated.has("stream-get-duplicate-missing") && value === undefined && seen.get(key) === undefined) continue;
        return false;
      }
      seen.set(key, value);
    }
    if (seen.size !== expected.size) return false;
    for (const [key, value] of expected) {
      if (!seen.has(key)) return false;
      const got = seen.get(key);
      if (sameValue(got, value)) continue;
      if (!step.ctx.tolerated.has("stream-get-stale")) return false;
      const found = step.ctx.model.lookup(step.ns, key);
      if (!(found.state === "stale" && sameValue(got, found.entry.value))) return false;
    }
    return keys.every((key) => seen.has(key));
  };
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of stream) items.push(item);
  return items;
}

function skip(ctx: RunContext, reason: KnownDivergence): void {
  ctx.stats.skip(reason);
}

/** The state the step's key is in (the first key for batches), or "refused" when the model refuses the call. */
function coverageState(step: Step): string {
  const op = step.op;
  const first = "key" in op ? op.key : "keys" in op ? op.keys[0] : "entries" in op ? op.entries[0]?.[0] : undefined;
  const refused = !predict(() => [step.ctx.model.keys(step.ns), "ttl" in op && resolveTtl(op.ttl), op.op === "wrap" && resolveTtl(op.grace)]).ok;
  if (first === undefined) return refused ? "refused" : "no key";
  const found = predict(() => step.ctx.model.lookup(step.ns, step.key(first)));
  return refused || !found.ok ? "refused" : found.value.state;
}

/** The key indexes a call names. */
function stepKeys(op: CallOp): number[] {
  if ("key" in op) return [op.key];
  if ("keys" in op) return [...op.keys];
  if ("entries" in op) return op.entries.map(([i]) => i);
  return [];
}

/** The tolerated divergence that leaves `key` out of the steps on a deployment, if any. */
export function excludedBy(key: string, tolerated: ReadonlySet<KnownDivergence>, kind: DeploymentKind): KnownDivergence | undefined {
  if (tolerated.has("lone-surrogate-key") && hasLoneSurrogate(key)) return "lone-surrogate-key";
  if (tolerated.has("lmdb-control-alias") && kind === "lmdb" && key.length >= 64 && /[\u0000-\u0004]/.test(key)) return "lmdb-control-alias";
  return undefined;
}

/** With "delete-stale" tolerated, how many of the distinct keys are stale (a delete may count them); else 0. */
function staleCount(step: Step, keys: readonly string[]): number {
  if (!step.ctx.tolerated.has("delete-stale")) return 0;
  return [...new Set(keys)].filter((key) => {
    const found = predict(() => step.ctx.model.lookup(step.ns, key));
    return found.ok && found.value.state === "stale";
  }).length;
}

/** A batch call naming no keys or entries. */
function isEmptyBatch(op: CallOp): boolean {
  return ((op.op === "getMany" || op.op === "streamGet" || op.op === "deleteMany") && op.keys.length === 0) || ((op.op === "setMany" || op.op === "streamSet") && op.entries.length === 0);
}

function validMs(ms: Ms): boolean {
  return predict(() => resolveTtl(ms)).ok;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function runWrap(step: Step & { op: Extract<Op, { op: "wrap" }> }): Promise<void> {
  const { op, ctx } = step;
  const key = step.key(op.key);
  if (ctx.tolerated.has("wrap-invalid-ttl") && !(validMs(op.ttl) && validMs(op.grace))) return skip(ctx, "wrap-invalid-ttl");
  await converge(step, [op.key]);
  let calls = 0;
  let signal = () => {};
  const called = new Promise<void>((resolve) => (signal = resolve));
  const loader = () => {
    calls++;
    signal();
    return op.value;
  };
  const options = { ...step.options, ...(op.ttl !== undefined && { ttl: step.ttl(op.ttl)! }), ...(op.grace !== undefined && { grace: op.grace }) };
  const expected = predict(() => ctx.model.wrap(step.ns, key, op.value, { ttl: op.ttl, grace: op.grace }));
  const actual = await attempt(() => step.client.wrap(key, loader, options));
  check(step, [op.key], expected.ok ? { ok: true, value: expected.value.value } : expected, actual, sameValue);
  if (!expected.ok) return;
  const loaderRun = expected.value.loader;
  if (loaderRun === "not-called" && calls !== 0) step.fail([`a fresh value was there, yet the loader ran ${calls} time(s)`], [op.key]);
  if (loaderRun === "called" && calls !== 1) step.fail([`on a miss the loader must run once, it ran ${calls} time(s)`], [op.key]);
  if (loaderRun !== "refresh") return;
  // Stale within grace: the stale value came back; one background refresh must now store the loader's value.
  await Promise.race([called, sleep(COHERENCE_BOUND_MS)]);
  if (calls !== 1) step.fail([`the stale value was returned, but the background refresh ran the loader ${calls} time(s) within ${COHERENCE_BOUND_MS} ms (expected once)`], [op.key]);
  const refreshed = ctx.model.getEntry(step.ns, key);
  const read = await readUntil(`getEntry after refresh of ${describeOp(op)}`, () => step.client.getEntry(key, step.options), (entry) => sameEntry(step, key)(entry, refreshed), ctx.stats.staleness);
  if (!read.matched) {
    step.fail([`after the stale value was returned, the refreshed value did not land within ${read.waitedMs} ms`, `getEntry expected: ${describeValue(refreshed)}`, `getEntry actual:   ${describeValue(read.value)}`], [op.key]);
  }
}

/** Runs one step on the model and on the deployment and throws a divergence report when they differ. */
export async function runOp(op: Op, ctx: RunContext): Promise<void> {
  const { model, deployment } = ctx;
  if (op.op === "advance") {
    deployment.clock.advance(op.ms);
    return;
  }
  if (op.op === "settle") {
    if (deployment.eventual) await sleep(SETTLE_MS);
    return;
  }
  if (op.op === "advanceTo") {
    // A stale boundary is preferably the one of the key last written, which the next steps name most.
    const recent = ctx.recent && predict(() => model.lookup(ctx.recent!.ns, keyAt(ctx.pool, ctx.recent!.key)));
    const recentStaleAt = recent?.ok && recent.value.state === "fresh" && recent.value.entry.goneAt > recent.value.entry.freshUntil ? recent.value.entry.freshUntil : undefined;
    const times = op.staleOnly && recentStaleAt !== undefined ? [recentStaleAt] : model.boundaries(op.staleOnly);
    ctx.stats.saw(op.staleOnly ? "advanceTo stale boundary" : "advanceTo boundary", times.length === 0 ? "none there" : "moved");
    if (times.length === 0) return;
    const target = times[op.boundary % times.length]! + op.offset;
    const now = deployment.clock.now();
    if (target > now) deployment.clock.advance(target - now);
    return;
  }
  const step = new Step(op, ctx);
  const excluded = stepKeys(op).map((i) => excludedBy(step.key(i), ctx.tolerated, deployment.kind)).find((reason) => reason !== undefined);
  if (excluded !== undefined) return skip(ctx, excluded);
  if (ctx.tolerated.has("invalid-namespace-stops-local-tier") && deployment.eventual && !predict(() => model.keys(step.ns)).ok) {
    return skip(ctx, "invalid-namespace-stops-local-tier");
  }
  await runCall(step);
  const written = op.op === "set" || op.op === "wrap" || op.op === "touch" ? op.key : op.op === "setMany" || op.op === "streamSet" ? op.entries.at(-1)?.[0] : undefined;
  if (written !== undefined) ctx.recent = { key: step.index(written), ns: step.ns };
}

async function runCall(step: Step): Promise<void> {
  const { op, ctx } = step;
  const { model, deployment } = ctx;
  const { client, options, ns } = step;
  ctx.stats.saw(op.op, coverageState(step));
  if (ctx.tolerated.has("empty-batch-unchecked") && isEmptyBatch(op) && !predict(() => [model.keys(ns), "ttl" in op && resolveTtl(op.ttl)]).ok) {
    return skip(ctx, "empty-batch-unchecked");
  }
  switch (op.op) {
    case "get": {
      const key = step.key(op.key);
      return checkRead(step, [op.key], predict(() => model.get(ns, key)), () => client.get(key, options), sameValue);
    }
    case "getEntry": {
      const key = step.key(op.key);
      const read = async () => {
        const entry = await client.getEntry(key, options);
        if (entry !== undefined) ctx.stats.saw("getEntry served by tier", entry.tier);
        return entry;
      };
      return checkRead(step, [op.key], predict(() => model.getEntry(ns, key)), read, sameEntry(step, key));
    }
    case "has": {
      const key = step.key(op.key);
      const expected = predict(() => model.has(ns, key));
      const staleTolerated = ctx.tolerated.has("has-stale") && expected.ok && model.lookup(ns, key).state === "stale";
      return checkRead(step, [op.key], expected, () => client.has(key, options), (actual, wanted) => actual === wanted || (staleTolerated && actual));
    }
    case "getMany": {
      const keys = op.keys.map((i) => step.key(i));
      return checkRead(step, op.keys, predict(() => model.getMany(ns, keys)), () => client.getMany(keys, options), sameMap);
    }
    case "streamGet": {
      const keys = op.keys.map((i) => step.key(i));
      return checkRead(step, op.keys, predict(() => model.streamGet(ns, keys)), () => collect(client.streamGet(keys, options)), sameStream(step, keys));
    }
    case "set": {
      const key = step.key(op.key);
      const ttl = step.ttl(op.ttl);
      const expected = predict(() => model.set(ns, key, op.value, op.ttl));
      return check(step, [op.key], expected, await attempt(() => client.set(key, op.value, { ...options, ...(ttl !== undefined && { ttl }) })), () => true);
    }
    case "setMany":
    case "streamSet": {
      const entries = op.entries.map(([i, value]) => [step.key(i), value] as const);
      const ttl = step.ttl(op.ttl);
      const callOptions = { ...options, ...(ttl !== undefined && { ttl }) };
      const keys = op.entries.map(([i]) => i);
      if (op.op === "setMany") {
        const expected = predict(() => model.setMany(ns, entries, op.ttl));
        return check(step, keys, expected, await attempt(() => client.setMany(entries, callOptions)), () => true);
      }
      const expected = predict(() => model.streamSet(ns, entries, op.ttl));
      return check(step, keys, expected, await attempt(() => client.streamSet(entries, callOptions)), (actual, wanted) => actual === wanted);
    }
    case "delete": {
      const key = step.key(op.key);
      await converge(step, [op.key]);
      const stale = staleCount(step, [key]);
      const expected = predict(() => model.delete(ns, key));
      return check(step, [op.key], expected, await attempt(() => client.delete(key, options)), (actual, wanted) => actual === wanted || (actual && stale === 1));
    }
    case "deleteMany": {
      const keys = op.keys.map((i) => step.key(i));
      await converge(step, op.keys);
      const stale = staleCount(step, keys);
      const expected = predict(() => model.deleteMany(ns, keys));
      return check(step, op.keys, expected, await attempt(() => client.deleteMany(keys, options)), (actual, wanted) => actual >= wanted && actual <= wanted + stale);
    }
    case "touch": {
      const key = step.key(op.key);
      if (ctx.tolerated.has("redis-touch-keeps-grace") && deployment.kind !== "memory" && deployment.kind !== "lmdb") {
        const found = predict(() => model.lookup(ns, key));
        if (found.ok && found.value.state === "fresh" && found.value.entry.goneAt > found.value.entry.freshUntil) return skip(ctx, "redis-touch-keeps-grace");
      }
      if (ctx.tolerated.has("touch-stale")) {
        const found = predict(() => model.lookup(ns, key));
        if (found.ok && found.value.state === "stale") return skip(ctx, "touch-stale");
      }
      await converge(step, [op.key]);
      const ttl = step.ttl(op.ttl);
      const expected = predict(() => model.touch(ns, key, op.ttl));
      return check(step, [op.key], expected, await attempt(() => client.touch(key, { ...options, ...(ttl !== undefined && { ttl }) })), (actual, wanted) => actual === wanted);
    }
    case "clear": {
      const expected = predict(() => model.clear(ns));
      return check(step, [], expected, await attempt(() => client.clear(options)), () => true);
    }
    case "wrap":
      return runWrap(step as Step & { op: typeof op });
  }
}
