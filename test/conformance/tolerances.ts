import type { CacheEntry } from "../../client/index.js";
import type { DeploymentKind } from "../helpers/conformance-deployments.js";
import { sameValue } from "../helpers/conformance-values.js";
import { hasLoneSurrogate, resolveTtl } from "../model/rules.js";
import type { KnownDivergence } from "./known-divergences.js";
import type { Ms } from "./ops.js";
import { predict, validMs, type Step } from "./step.js";

/**
 * What each tolerated divergence (CONFORMANCE_TOLERATE) changes in a run:
 * steps left out, arguments sent differently, or results also accepted.
 * With nothing tolerated, none of this changes anything.
 */

/** The tolerated divergence that leaves `key` out of a run on a deployment, if any. */
export function keyLeftOutBecause(key: string, tolerated: ReadonlySet<KnownDivergence>, kind: DeploymentKind): KnownDivergence | undefined {
  if (tolerated.has("lone-surrogate-key") && hasLoneSurrogate(key)) return "lone-surrogate-key";
  if (tolerated.has("lmdb-control-alias") && kind === "lmdb" && key.length >= 64 && /[\u0000-\u0004]/.test(key)) return "lmdb-control-alias";
  return undefined;
}

function stateOf(step: Step, index: number) {
  const found = predict(() => step.ctx.model.lookup(step.ns, step.key(index)));
  return found.ok ? found.value : undefined;
}

/** The tolerated divergence that leaves this step out, if any. */
export function stepLeftOutBecause(step: Step): KnownDivergence | undefined {
  const { op, ctx } = step;
  const tolerated = ctx.tolerated;
  for (const index of step.keyIndexes()) {
    const reason = keyLeftOutBecause(step.key(index), tolerated, ctx.deployment.kind);
    if (reason !== undefined) return reason;
  }
  const validNamespace = predict(() => ctx.model.keys(step.ns)).ok;
  if (tolerated.has("invalid-namespace-stops-local-tier") && ctx.deployment.eventual && !validNamespace) return "invalid-namespace-stops-local-tier";
  if (tolerated.has("empty-batch-unchecked") && step.keyIndexes().length === 0 && op.op !== "clear") {
    if (!validNamespace || ("ttl" in op && !validMs(op.ttl))) return "empty-batch-unchecked";
  }
  if (op.op === "wrap" && tolerated.has("wrap-invalid-ttl") && !(validMs(op.ttl) && validMs(op.grace))) return "wrap-invalid-ttl";
  if (op.op === "touch") {
    const found = stateOf(step, op.key);
    if (tolerated.has("touch-stale") && found?.state === "stale") return "touch-stale";
    const redis = ctx.deployment.kind === "redis" || ctx.deployment.kind === "two-instances";
    if (tolerated.has("redis-touch-keeps-grace") && redis && found?.state === "fresh" && found.entry.goneAt > found.entry.freshUntil) return "redis-touch-keeps-grace";
  }
  return undefined;
}

/** A TTL as sent: rounded up here ("fractional-ttl"), or an unconvertible invalid one sent as -1 ("ttl-range-error"). */
export function ttlAsSent(ms: Ms, tolerated: ReadonlySet<KnownDivergence>): Ms {
  if (ms === undefined) return ms;
  const valid = predict(() => resolveTtl(ms)).ok;
  if (tolerated.has("fractional-ttl") && valid) return Math.ceil(ms);
  if (tolerated.has("ttl-range-error") && !valid && !Number.isInteger(ms)) return -1;
  return ms;
}

/** "has-stale": true is also accepted for a stale key. */
export function hasAlsoTrue(step: Step, index: number): boolean {
  return step.ctx.tolerated.has("has-stale") && stateOf(step, index)?.state === "stale";
}

/** "delete-stale": how many of the keys are stale (a delete may count them too); 0 when not tolerated. */
export function deleteMayAlsoCount(step: Step, indexes: readonly number[]): number {
  if (!step.ctx.tolerated.has("delete-stale")) return 0;
  return new Set(indexes.filter((i) => stateOf(step, i)?.state === "stale").map((i) => step.key(i))).size;
}

/** "local-ttl-remaining" (0 from the local tier) and "grace-ttl-remaining" (the end of grace): TTLs also accepted from getEntry. */
export function entryTtlAlso(step: Step, index: number): (actual: CacheEntry<unknown>) => boolean {
  return (actual) => {
    const tolerated = step.ctx.tolerated;
    if (tolerated.has("local-ttl-remaining") && actual.tier === "client" && actual.ttlRemainingMs === 0) return true;
    const found = stateOf(step, index);
    return tolerated.has("grace-ttl-remaining") && found?.state === "fresh" && actual.ttlRemainingMs === found.entry.goneAt - step.ctx.deployment.clock.now();
  };
}

/** "stream-get-duplicate-missing": a missing key may come again. */
export function streamRepeatAlso(step: Step): (value: unknown, first: unknown) => boolean {
  return (value, first) => step.ctx.tolerated.has("stream-get-duplicate-missing") && value === undefined && first === undefined;
}

/** "stream-get-stale": a stale key may come with its stale value. */
export function streamValueAlso(step: Step): (key: string, value: unknown) => boolean {
  return (key, value) => {
    if (!step.ctx.tolerated.has("stream-get-stale")) return false;
    const found = predict(() => step.ctx.model.lookup(step.ns, key));
    return found.ok && found.value.state === "stale" && sameValue(value, found.value.entry.value);
  };
}
