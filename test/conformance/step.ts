import { RpcError, statusName, type CacheClient } from "../../client/index.js";
import type { ClientUnderTest, Deployment } from "../helpers/conformance-deployments.js";
import { keyAt, shortKey } from "../helpers/conformance-keys.js";
import { describeValue } from "../helpers/conformance-values.js";
import { COHERENCE_BOUND_MS, type ReadBound, type StalenessLog } from "../helpers/eventually.js";
import { PossibleStates } from "../model/possible-states.js";
import { InvalidArgument, ReferenceCache, type ModelEntry } from "../model/reference-model.js";
import { FaultTimeline } from "./fault-timeline.js";
import { describeOp, RECENT, type Ms, type Op } from "./ops.js";
import type { RunStats } from "./run-stats.js";

/** Everything a step needs: the deployment, the model on the same clock, the run's keys. */
export interface RunContext {
  readonly deployment: Deployment;
  /** The model; exact for every key whose state is known. */
  readonly model: ReferenceCache;
  /** The states keys may be in after calls whose outcome is unknown (over {@link model}). */
  readonly possible: PossibleStates;
  readonly pool: readonly string[];
  readonly stats: RunStats;
  /** The run's faults, in a run that may have some. */
  readonly faults: FaultTimeline | undefined;
  /** The key (pool index) and namespace last written: what {@link RECENT} names. */
  recent?: { readonly key: number; readonly ns: string };
}

/** A fresh model (and possible states) for one run on `deployment`; with `faults`, the run may put faults on it. */
export function newRunContext(deployment: Deployment, pool: readonly string[], stats: RunStats, faults: boolean): RunContext {
  const model = new ReferenceCache({ maxKeyBytes: deployment.maxKeyBytes, now: deployment.clock.now });
  const inject = deployment.injectFault;
  if (faults && inject === undefined) throw new Error(`the ${deployment.kind} deployment cannot suffer faults`);
  return { deployment, model, possible: new PossibleStates(model), pool, stats, faults: faults && inject ? new FaultTimeline(inject) : undefined };
}

const NORMAL_READS: ReadBound = { ms: COHERENCE_BOUND_MS };

/** A step that calls the service (not a clock move, a pause or a fault). */
export type CallOp = Exclude<Op, { op: "advance" } | { op: "advanceTo" } | { op: "settle" } | { op: "fault" }>;

/** What a call, or the model, came to: a value or an error. */
export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

/** The model's answer, or its refusal (InvalidArgument); any other error is a bug in the test and is thrown. */
export function predict<T>(compute: () => T): Outcome<T> {
  try {
    return { ok: true, value: compute() };
  } catch (err) {
    if (err instanceof InvalidArgument) return { ok: false, error: err };
    throw err;
  }
}

/** The service's answer, or whatever it rejected with. */
export async function attempt<T>(call: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** An error as one line of a divergence report: the gRPC status name for an RpcError. */
export function describeError(error: unknown): string {
  if (error instanceof RpcError) return `RpcError ${statusName(error.code)}: ${error.details}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

function showKey(key: string): string {
  const bytes = Buffer.byteLength(key, "utf8");
  return bytes > 60 ? `${shortKey(key)} (${key.length} UTF-16 units, ${bytes} UTF-8 bytes)` : shortKey(key);
}

/** A call being checked: who sends it, to which namespace, and how to report a divergence. */
export class Step<O extends CallOp = CallOp> {
  readonly who: ClientUnderTest;
  readonly client: CacheClient;
  /** The namespace as the model sees it (the client's own when the call names none). */
  readonly ns: string;
  /** Call options naming the step's namespace, if it names one. */
  readonly options: { namespace?: string };

  constructor(
    readonly op: O,
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

  /** The step's call options with `ttl` as the step gives it (left out when undefined). */
  withTtl(ttl: Ms): { namespace?: string; ttl?: number } {
    return ttl === undefined ? this.options : { ...this.options, ttl };
  }

  get eventual(): boolean {
    return this.ctx.deployment.eventual;
  }

  /** True once a fault began in this run. */
  get afterFault(): boolean {
    return (this.ctx.faults?.begun.length ?? 0) > 0;
  }

  /** How long reads may lag, and from when: longer once a fault began in the run. */
  get readBound(): ReadBound {
    return this.afterFault ? this.ctx.faults!.readBound : NORMAL_READS;
  }

  /** Where the staleness of this step's reads is counted: apart once a fault began in the run. */
  get staleness(): StalenessLog {
    return this.afterFault ? this.ctx.stats.afterFaults : this.ctx.stats.staleness;
  }

  /** True when a call of this step that began at `started` may have been kept from Redis by a fault. */
  disrupted(started: number): boolean {
    return this.ctx.faults?.disrupts(started) ?? false;
  }

  /** True when a call of this step that began at `started` may fail with `error` because of a fault. */
  excused(started: number, error: unknown): boolean {
    return this.ctx.faults?.excuses(started, error) ?? false;
  }

  /** The pool index a key index names (modulo the pool's size; {@link RECENT}: the key last written). */
  index(index: number): number {
    return (index === RECENT ? (this.ctx.recent?.key ?? 0) : index) % this.ctx.pool.length;
  }

  key(index: number): string {
    return keyAt(this.ctx.pool, this.index(index));
  }

  /** The key indexes the step names. */
  keyIndexes(): number[] {
    const op: CallOp = this.op;
    if ("key" in op) return [op.key];
    if ("keys" in op) return [...op.keys];
    if ("entries" in op) return op.entries.map(([i]) => i);
    return [];
  }

  /** Throws a divergence report: the step, `lines`, and what the model holds for `keys`. */
  fail(lines: readonly string[], keys: readonly number[] = this.keyIndexes()): never {
    const now = this.ctx.deployment.clock.now();
    const report = [
      `divergence from the reference model at ${describeOp(this.op)}`,
      `  client: ${this.who.label}; namespace: ${JSON.stringify(this.ns)}`,
      ...lines.map((line) => `  ${line}`),
    ];
    for (const index of new Set(keys.map((i) => this.index(i)))) {
      const key = this.key(index);
      // lookup checks the namespace and the key as a call would.
      const found = predict(() => (this.ctx.model.lookup(this.ns, key), this.ctx.possible.states(this.ns, key)));
      if (!found.ok) {
        report.push(`  model after the step: k#${index} ${showKey(key)} → refused (${(found.error as Error).message})`);
        continue;
      }
      const states = found.value.map((entry) => describeEntry(entry, now));
      const shown = states.length === 1 ? states[0] : `one of (the outcome of a call that failed during a fault is unknown):\n${states.map((state) => `      - ${state}`).join("\n")}`;
      report.push(`  model after the step: k#${index} ${showKey(key)} → ${shown}`);
    }
    throw new Error(report.join("\n"));
  }
}

function describeEntry(entry: ModelEntry | undefined, now: number): string {
  if (entry === undefined || now >= entry.goneAt) return "absent";
  const { value, freshUntil, goneAt } = entry;
  const state = now < freshUntil ? "fresh" : "stale";
  const times = freshUntil === Infinity ? "never expires" : state === "fresh" ? `fresh for ${freshUntil - now} ms more, then stale for ${goneAt - freshUntil} ms` : `stale for ${goneAt - now} ms more`;
  return `${state}, ${times}: ${describeValue(value)}`;
}
