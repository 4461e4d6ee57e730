import { RpcError, statusName, type CacheClient } from "../../client/index.js";
import type { ClientUnderTest, Deployment } from "../helpers/conformance-deployments.js";
import { keyAt, shortKey } from "../helpers/conformance-keys.js";
import { describeValue } from "../helpers/conformance-values.js";
import { InvalidArgument, type ReferenceCache } from "../model/reference-model.js";
import { describeOp, RECENT, type Ms, type Op } from "./ops.js";
import type { RunStats } from "./run-stats.js";

/** Everything a step needs: the deployment, the model on the same clock, the run's keys. */
export interface RunContext {
  readonly deployment: Deployment;
  readonly model: ReferenceCache;
  readonly pool: readonly string[];
  readonly stats: RunStats;
  /** The key (pool index) and namespace last written: what {@link RECENT} names. */
  recent?: { readonly key: number; readonly ns: string };
}

/** A step that calls the service (not a clock move or a pause). */
export type CallOp = Exclude<Op, { op: "advance" } | { op: "advanceTo" } | { op: "settle" }>;

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
      const found = predict(() => this.ctx.model.lookup(this.ns, key));
      let state: string;
      if (!found.ok) state = `refused (${(found.error as Error).message})`;
      else if (found.value.state === "absent") state = "absent";
      else {
        const { value, freshUntil, goneAt } = found.value.entry;
        const times =
          freshUntil === Infinity ? "never expires" : found.value.state === "fresh" ? `fresh for ${freshUntil - now} ms more, then stale for ${goneAt - freshUntil} ms` : `stale for ${goneAt - now} ms more`;
        state = `${found.value.state}, ${times}: ${describeValue(value)}`;
      }
      report.push(`  model after the step: k#${index} ${showKey(key)} → ${state}`);
    }
    throw new Error(report.join("\n"));
  }
}
