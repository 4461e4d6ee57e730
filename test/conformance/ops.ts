import fc from "fast-check";
import type { Fault } from "../helpers/conformance-faults.js";
import { describeValue, loaderValueArb, valueArb } from "../helpers/conformance-values.js";
import { MAX_TTL_MS } from "../model/rules.js";

/** A TTL or grace as the caller passes it (undefined = option absent). */
export type Ms = number | undefined;

/** Which client sends the call (index, modulo the deployment's clients) and which namespace it names (undefined = the client's own). */
interface Addressed {
  readonly client: number;
  readonly ns: string | undefined;
}

/**
 * One step of a random run, as plain data. Keys are indexes into the run's
 * key pool (so that a run reuses its keys); the pool is printed with the
 * counterexample.
 */
export type Op =
  | (Addressed & { readonly op: "get" | "getEntry" | "has" | "delete"; readonly key: number })
  | (Addressed & { readonly op: "getMany" | "streamGet" | "deleteMany"; readonly keys: readonly number[] })
  | (Addressed & { readonly op: "set"; readonly key: number; readonly value: unknown; readonly ttl: Ms; readonly tags?: Tags })
  | (Addressed & { readonly op: "setMany" | "streamSet"; readonly entries: readonly (readonly [number, unknown])[]; readonly ttl: Ms; readonly tags?: Tags })
  | (Addressed & { readonly op: "invalidateTags"; readonly tags: readonly string[] })
  | (Addressed & { readonly op: "touch"; readonly key: number; readonly ttl: Ms })
  | (Addressed & { readonly op: "clear" })
  | (Addressed & { readonly op: "wrap"; readonly key: number; readonly value: unknown; readonly ttl: Ms; readonly grace: Ms; readonly eagerRefresh?: number | undefined; readonly loaderContext?: WrapLoaderContext | undefined })
  | { readonly op: "advance"; readonly ms: number }
  | { readonly op: "settle" }
  | { readonly op: "fault"; readonly fault: Fault }
  | { readonly op: "advanceTo"; readonly boundary: number; readonly offset: -1 | 0 | 1; readonly staleOnly: boolean };

/** The tags option of a write (undefined = absent). */
export type Tags = readonly string[] | undefined;

/** A few tags, so that writes and invalidations meet; and tags every call must refuse. */
const TAGS = ["t1", "t2", "user:1", "\ufeffuser:1", "\u{1F600}"] as const;
const INVALID_TAGS: readonly (readonly string[])[] = [[""], ["x".repeat(129)], ["a\uD800"], Array.from({ length: 17 }, (_, i) => `t${i}`)];

/** Mostly one to three of a small pool (duplicates too, or none); else no tags; rarely an invalid list. */
const tagsArb: fc.Arbitrary<Tags> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 8, arbitrary: fc.array(fc.constantFrom(...TAGS), { minLength: 0, maxLength: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(...INVALID_TAGS) },
);

/** What invalidateTags names: one or two of the pool; rarely none, or an invalid list. */
const invalidationArb: fc.Arbitrary<readonly string[]> = fc.oneof(
  { weight: 8, arbitrary: fc.array(fc.constantFrom(...TAGS), { minLength: 1, maxLength: 2 }) },
  { weight: 1, arbitrary: fc.constantFrom([], ...INVALID_TAGS, Array.from({ length: 65 }, (_, i) => `t${i}`)) },
);

/** Valid namespaces the suite uses ("" is the default one, named both ways). The last is 64 characters, the longest valid. */
export const SUITE_NAMESPACES = ["", "default", "alpha", `z${"9._-".repeat(15)}abc`] as const;

/** Names every call must refuse. */
const INVALID_NAMESPACES = ["-lead", "has space", "a".repeat(65), "ü", "a/b", "a:b", "{x}"] as const;

/** Mostly the default namespace (named by omission, "" or "default"), so that steps meet each other's keys. */
const nsArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 8, arbitrary: fc.constant(undefined) },
  { weight: 6, arbitrary: fc.constantFrom(...SUITE_NAMESPACES) },
  { weight: 1, arbitrary: fc.constantFrom(...INVALID_NAMESPACES) },
);

/**
 * TTLs of at least 60 s of fake time (so that the real Redis PX expiry never
 * fires during a run), fractional ones, the 100-year maximum, and invalid
 * ones (negative, NaN, infinite, over the maximum).
 */
const ttlArb: fc.Arbitrary<Ms> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(undefined, 0) },
  { weight: 6, arbitrary: fc.constantFrom(60_000, 61_000, 90_000, 120_000, 300_000) },
  { weight: 2, arbitrary: fc.constantFrom(60_000.4, 60_000.5, 90_000.001, 119_999.999) },
  { weight: 1, arbitrary: fc.constantFrom(MAX_TTL_MS, -0) },
  { weight: 1, arbitrary: fc.constantFrom(-1, -0.5, NaN, Infinity, -Infinity, MAX_TTL_MS + 1, MAX_TTL_MS + 0.5) },
);

/** What a wrap step's loader says through its context (see WrapContext). */
export interface WrapLoaderContext {
  readonly ttl?: number;
  readonly skip?: boolean;
}

/** Mostly nothing; sometimes a TTL of the loader's own, or skip. */
const loaderContextArb: fc.Arbitrary<WrapLoaderContext | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constantFrom<WrapLoaderContext>({ ttl: 30_000 }, { ttl: 200_000 }, { skip: true }) },
);

/** Mostly no eager refresh. */
const eagerRefreshArb: fc.Arbitrary<number | undefined> = fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(0.5, 0.8) });

/** TTLs of wrap: mostly finite, so that values with grace go stale. */
const wrapTtlArb: fc.Arbitrary<Ms> = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(undefined, 0) },
  { weight: 8, arbitrary: fc.constantFrom(60_000, 90_000, 120_000, 60_000.5) },
  { weight: 1, arbitrary: fc.constantFrom(-1, NaN, MAX_TTL_MS) },
);

const graceArb: fc.Arbitrary<Ms> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(undefined, 0) },
  { weight: 8, arbitrary: fc.constantFrom(30_000, 60_000, 200_000) },
  { weight: 1, arbitrary: fc.constantFrom(-1, NaN) },
);

/** A key index naming the key (and namespace) the last write named, whatever the pool. */
export const RECENT = -1;

/** Mostly the last key written or the first few keys of the pool, so that steps meet each other's keys. */
const keyArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant(RECENT) },
  { weight: 3, arbitrary: fc.nat({ max: 2 }) },
  { weight: 1, arbitrary: fc.nat({ max: 15 }) },
);
const keysArb = fc.array(keyArb, { maxLength: 6 });
const clientArb = fc.nat({ max: 1 });

/** Clock steps around the TTLs above; with advanceTo they land exactly on, just before and just after expiries. */
const ADVANCE_STEPS = [1, 999, 30_000, 59_999, 60_000, 61_000, 150_000, 3_600_000, 400_000_000] as const;

/** Who sends a call and which namespace it names. */
const to = { client: clientArb, ns: nsArb };

/**
 * Faults of the two-instance deployment, each lasting a short random time
 * (real ms): Redis paused (beyond 2 s the instances flush for its silence),
 * Redis killed and restarted, one instance's pub/sub connection cut. Shorter
 * is simpler: shrinking moves towards 0.
 */
const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  fc.record({ kind: fc.constant("pauseRedis" as const), ms: fc.integer({ min: 100, max: 2_500 }) }),
  fc.record({ kind: fc.constant("killRedis" as const), ms: fc.integer({ min: 0, max: 1_500 }) }),
  fc.record({ kind: fc.constant("cutSubscription" as const), instance: fc.nat({ max: 1 }), ms: fc.integer({ min: 0, max: 2_500 }) }),
);

/**
 * Which mix of steps a run draws: "all" weighs every operation towards
 * reads and writes; "grace" writes mostly through wrap with grace and moves
 * the clock to where values go stale, then reads, touches, deletes and
 * wraps them there; "faults" is "all" with faults (for deployments that can
 * suffer them); "tags" writes tagged values, invalidates their tags and
 * reads what is left.
 */
export type OpMix = "all" | "grace" | "tags" | "faults";

type StepKind = "read" | "readMany" | "set" | "setMany" | "delete" | "deleteMany" | "touch" | "wrap" | "clear" | "invalidateTags" | "advance" | "advanceTo" | "settle" | "fault";

const ALL: Record<StepKind, number> = { read: 8, readMany: 3, set: 8, setMany: 3, delete: 2, deleteMany: 1, touch: 2, wrap: 6, clear: 1, invalidateTags: 3, advance: 3, advanceTo: 4, settle: 6, fault: 0 };

/** Weights of each kind of step in each mix ("faults": often enough that most runs have one or two; a run takes at most MAX_FAULTS_PER_RUN). */
const WEIGHTS: Record<OpMix, Record<StepKind, number>> = {
  all: ALL,
  grace: { read: 8, readMany: 3, set: 1, setMany: 1, delete: 2, deleteMany: 1, touch: 3, wrap: 8, clear: 0, invalidateTags: 0, advance: 1, advanceTo: 8, settle: 6, fault: 0 },
  tags: { read: 8, readMany: 4, set: 8, setMany: 4, delete: 1, deleteMany: 1, touch: 1, wrap: 2, clear: 0, invalidateTags: 6, advance: 1, advanceTo: 1, settle: 6, fault: 0 },
  faults: { ...ALL, fault: 10 },
};

/** Every kind of step, weighted for `mix`; "settle" steps only where reads may lag (`eventual`). */
export function opArbs(mix: OpMix, eventual: boolean): { weight: number; arbitrary: fc.Arbitrary<Op> }[] {
  const value = valueArb();
  const w = { ...WEIGHTS[mix], ...(!eventual && { settle: 0 }) };
  const arbs: { weight: number; arbitrary: fc.Arbitrary<Op> }[] = [
    { weight: w.read, arbitrary: fc.record({ ...to, op: fc.constantFrom("get" as const, "getEntry" as const, "has" as const), key: keyArb }) },
    { weight: w.readMany, arbitrary: fc.record({ ...to, op: fc.constantFrom("getMany" as const, "streamGet" as const), keys: keysArb }) },
    { weight: w.set, arbitrary: fc.record({ ...to, op: fc.constant("set" as const), key: keyArb, value, ttl: ttlArb, tags: tagsArb }) },
    {
      weight: w.setMany,
      arbitrary: fc.record({
        ...to,
        op: fc.constantFrom("setMany" as const, "streamSet" as const),
        entries: fc.array(fc.tuple(keyArb, value), { maxLength: 5 }),
        ttl: ttlArb,
        tags: tagsArb,
      }),
    },
    { weight: w.invalidateTags, arbitrary: fc.record({ ...to, op: fc.constant("invalidateTags" as const), tags: invalidationArb }) },
    { weight: w.delete, arbitrary: fc.record({ ...to, op: fc.constant("delete" as const), key: keyArb }) },
    { weight: w.deleteMany, arbitrary: fc.record({ ...to, op: fc.constant("deleteMany" as const), keys: keysArb }) },
    { weight: w.touch, arbitrary: fc.record({ ...to, op: fc.constant("touch" as const), key: keyArb, ttl: ttlArb }) },
    { weight: w.wrap, arbitrary: fc.record({ ...to, op: fc.constant("wrap" as const), key: keyArb, value: loaderValueArb(), ttl: wrapTtlArb, grace: graceArb, eagerRefresh: eagerRefreshArb, loaderContext: loaderContextArb }) },
    { weight: w.clear, arbitrary: fc.record({ ...to, op: fc.constant("clear" as const) }) },
    { weight: w.advance, arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.constantFrom(...ADVANCE_STEPS) }) },
    { weight: w.settle, arbitrary: fc.constant({ op: "settle" as const }) },
    { weight: w.fault, arbitrary: fc.record({ op: fc.constant("fault" as const), fault: faultArb }) },
    {
      weight: w.advanceTo,
      arbitrary: fc.record({
        op: fc.constant("advanceTo" as const),
        boundary: fc.nat({ max: 7 }),
        offset: fc.constantFrom(-1 as const, 0 as const, 1 as const),
        staleOnly: mix === "grace" ? fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }) : fc.boolean(),
      }),
    },
  ];
  return arbs.filter((arb) => arb.weight > 0);
}

function describeFault(fault: Fault): string {
  switch (fault.kind) {
    case "pauseRedis":
      return `pause Redis for ${fault.ms} ms`;
    case "killRedis":
      return `kill Redis, restart it ${fault.ms} ms later`;
    case "cutSubscription":
      return `cut instance ${fault.instance + 1}'s pub/sub connection, refuse it for ${fault.ms} ms`;
  }
}

function ms(value: Ms): string {
  return value === undefined ? "absent" : Object.is(value, -0) ? "-0" : String(value);
}

function tagList(tags: Tags): string {
  return tags === undefined ? "" : `, tags=${JSON.stringify(tags.map((tag) => (tag.length > 20 ? `${tag.slice(0, 8)}…(${tag.length})` : tag)))}`;
}

function k(index: number): string {
  return index === RECENT ? "k#recent" : `k#${index}`;
}

/** A one-line form of a step for counterexamples: k#3 is key 3 of the run's pool, k#recent the key (and namespace) last written. */
export function describeOp(op: Op): string {
  if (op.op === "advance") return `advance(${op.ms})`;
  if (op.op === "settle") return "settle()";
  if (op.op === "fault") return `fault(${describeFault(op.fault)})`;
  if (op.op === "advanceTo") {
    const which = op.staleOnly ? "the time k#recent goes stale, else stale boundary" : "boundary";
    return `advanceTo(${which} #${op.boundary}${op.offset === 0 ? "" : op.offset > 0 ? " + 1" : " - 1"})`;
  }
  // k#recent names the namespace too (that of the last write): the step's own namespace is not used then.
  const ns = "key" in op && op.key === RECENT ? undefined : op.ns;
  const head = `c${op.client}.${op.op}(${ns === undefined ? "" : `ns=${JSON.stringify(ns)}, `}`;
  switch (op.op) {
    case "get":
    case "getEntry":
    case "has":
    case "delete":
      return `${head}${k(op.key)})`;
    case "getMany":
    case "streamGet":
    case "deleteMany":
      return `${head}[${op.keys.map(k).join(", ")}])`;
    case "set":
      return `${head}${k(op.key)}, ${describeValue(op.value)}, ttl=${ms(op.ttl)}${tagList(op.tags)})`;
    case "setMany":
    case "streamSet":
      return `${head}[${op.entries.map(([i, v]) => `[${k(i)}, ${describeValue(v)}]`).join(", ")}], ttl=${ms(op.ttl)}${tagList(op.tags)})`;
    case "invalidateTags":
      return `c${op.client}.invalidateTags(${op.ns === undefined ? "" : `ns=${JSON.stringify(op.ns)}, `}${tagList(op.tags).slice(2)})`;
    case "touch":
      return `${head}${k(op.key)}, ttl=${ms(op.ttl)})`;
    case "wrap":
      return `${head}${k(op.key)}, loader → ${describeValue(op.value)}${op.loaderContext ? ` ctx ${JSON.stringify(op.loaderContext)}` : ""}, ttl=${ms(op.ttl)}, grace=${ms(op.grace)}${op.eagerRefresh === undefined ? "" : `, eagerRefresh=${op.eagerRefresh}`})`;
    case "clear":
      return `c${op.client}.clear(${op.ns === undefined ? "" : `ns=${JSON.stringify(op.ns)}`})`;
  }
}
