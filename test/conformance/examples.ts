import type { Op } from "./ops.js";

/** A fixed sequence of steps, checked against the model like a random run. */
export interface Example {
  readonly name: string;
  /** The keys the steps name by index. */
  readonly keys: string[];
  readonly ops: readonly Op[];
}

const c0 = { client: 0, ns: "alpha" } as const;
const prefix = "p".repeat(64);

/**
 * Sequences that pin the rules most worth reading as examples: grace and
 * stale-while-revalidate, expiry boundaries, namespaces, key identity,
 * duplicates in batches, and argument errors.
 */
export const EXAMPLES: readonly Example[] = [
  {
    name: "invalidateTags hides every value written before with any of the tags, from every read; delete and touch still count it; later writes are served",
    keys: ["a", "b", "c"],
    ops: [
      { ...c0, op: "set", key: 0, value: 1, ttl: undefined, tags: ["user:1", "t1"] },
      { ...c0, op: "setMany", entries: [[1, 2], [2, 3]], ttl: 60_000, tags: ["t1"] },
      { ...c0, op: "set", key: 2, value: 4, ttl: undefined, tags: ["t2"] },
      { ...c0, op: "invalidateTags", tags: ["t1", "t1"] },
      { ...c0, op: "get", key: 0 },
      { ...c0, op: "has", key: 1 },
      { ...c0, op: "getMany", keys: [0, 1, 2] },
      { ...c0, op: "streamGet", keys: [0, 1, 2] },
      { ...c0, op: "touch", key: 1, ttl: 120_000 },
      { ...c0, op: "getEntry", key: 1 },
      { ...c0, op: "delete", key: 0 },
      { ...c0, op: "wrap", key: 1, value: "loaded", ttl: 60_000, grace: 0 },
      { ...c0, op: "streamSet", entries: [[0, "again"]], ttl: undefined, tags: ["t1"] },
      { ...c0, op: "get", key: 0 },
      { client: 1, ns: "default", op: "invalidateTags", tags: ["t2"] },
      { ...c0, op: "get", key: 2 },
      { ...c0, op: "invalidateTags", tags: [] },
      { ...c0, op: "set", key: 0, value: 5, ttl: undefined, tags: ["x".repeat(129)] },
    ],
  },
  {
    name: "wrap within grace returns the stale value at once, then one background refresh stores the loader's value",
    keys: ["page"],
    ops: [
      { ...c0, op: "wrap", key: 0, value: "v1", ttl: 60_000, grace: 60_000 },
      { op: "advance", ms: 59_999 },
      { ...c0, op: "getEntry", key: 0 },
      { op: "advance", ms: 1 },
      { ...c0, op: "get", key: 0 },
      { ...c0, op: "has", key: 0 },
      { ...c0, op: "getEntry", key: 0 },
      { ...c0, op: "getMany", keys: [0] },
      { ...c0, op: "streamGet", keys: [0] },
      { ...c0, op: "wrap", key: 0, value: "v2", ttl: 60_000, grace: 60_000 },
      { ...c0, op: "getEntry", key: 0 },
    ],
  },
  {
    name: "past grace wrap runs the loader; a stale value can be neither touched nor counted by delete, but delete removes it",
    keys: ["k"],
    ops: [
      { ...c0, op: "wrap", key: 0, value: "old", ttl: 60_000, grace: 60_000 },
      { op: "advance", ms: 60_000 },
      { ...c0, op: "touch", key: 0, ttl: 120_000 },
      { ...c0, op: "delete", key: 0 },
      { ...c0, op: "wrap", key: 0, value: "new", ttl: 60_000, grace: 60_000 },
      { op: "advance", ms: 120_000 },
      { ...c0, op: "wrap", key: 0, value: "newer", ttl: 60_000, grace: 0 },
    ],
  },
  {
    name: "a fractional TTL is rounded up; touch sets a new expiry from now and drops grace",
    keys: ["t"],
    ops: [
      { ...c0, op: "set", key: 0, value: 1, ttl: 60_000.4 },
      { op: "advance", ms: 60_000 },
      { ...c0, op: "getEntry", key: 0 },
      { op: "advance", ms: 1 },
      { ...c0, op: "has", key: 0 },
      { ...c0, op: "wrap", key: 0, value: 2, ttl: 60_000, grace: 60_000 },
      { op: "advance", ms: 30_000 },
      { ...c0, op: "touch", key: 0, ttl: 90_000 },
      { ...c0, op: "getEntry", key: 0 },
      { op: "advance", ms: 90_000 },
      { ...c0, op: "wrap", key: 0, value: 3, ttl: 60_000, grace: undefined },
      { ...c0, op: "touch", key: 0, ttl: 0 },
      { op: "advance", ms: 400_000_000 },
      { ...c0, op: "getEntry", key: 0 },
    ],
  },
  {
    name: '"" is the namespace "default"; namespaces are isolated and clear empties one',
    keys: ["shared"],
    ops: [
      { client: 1, ns: undefined, op: "set", key: 0, value: "in default", ttl: undefined },
      { client: 0, ns: undefined, op: "get", key: 0 },
      { client: 0, ns: "", op: "getEntry", key: 0 },
      { client: 0, ns: "alpha", op: "has", key: 0 },
      { client: 0, ns: "alpha", op: "set", key: 0, value: "in alpha", ttl: undefined },
      { client: 0, ns: "default", op: "clear" },
      { client: 1, ns: undefined, op: "get", key: 0 },
      { client: 0, ns: "alpha", op: "get", key: 0 },
    ],
  },
  {
    name: "keys equal for 64+ characters, control characters and astral characters are all distinct keys, and clear removes them all",
    keys: [prefix, `${prefix}\u0000`, `${prefix}\u0001`, `${prefix}\u0004`, `${prefix}\u0000\u0000`, "\u0000", "\u0001", "😀", "\ud83d\ude00\u0000", `${"x".repeat(63)}\u0000`],
    ops: [
      { ...c0, op: "setMany", entries: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => [i, `value ${i}`] as const), ttl: undefined },
      { ...c0, op: "getMany", keys: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
      { ...c0, op: "delete", key: 1 },
      { ...c0, op: "streamGet", keys: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
      { ...c0, op: "clear" },
      { ...c0, op: "getMany", keys: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
    ],
  },
  {
    name: "a key given twice: setMany keeps the last value, getMany/streamGet/deleteMany count it once",
    keys: ["x", "y"],
    ops: [
      { ...c0, op: "setMany", entries: [[0, "first"], [1, "y"], [0, "last"]], ttl: 60_000 },
      { ...c0, op: "streamSet", entries: [[1, "y1"], [1, "y2"]], ttl: undefined },
      { ...c0, op: "getMany", keys: [0, 0, 1] },
      { ...c0, op: "streamGet", keys: [0, 1, 0, 1] },
      { ...c0, op: "deleteMany", keys: [0, 0, 1, 1] },
      { ...c0, op: "streamGet", keys: [0, 0] },
    ],
  },
  {
    name: "invalid arguments are refused with INVALID_ARGUMENT and change nothing",
    keys: ["ok", "", "lone\ud800", "é".repeat(512), `${"é".repeat(512)}a`],
    ops: [
      { ...c0, op: "set", key: 0, value: "kept", ttl: undefined },
      { ...c0, op: "set", key: 1, value: "x", ttl: undefined },
      { ...c0, op: "set", key: 2, value: "x", ttl: undefined },
      { ...c0, op: "get", key: 2 },
      { ...c0, op: "set", key: 3, value: "at the limit", ttl: undefined },
      { ...c0, op: "set", key: 4, value: "over the limit", ttl: undefined },
      { ...c0, op: "setMany", entries: [[0, "changed"], [4, "x"]], ttl: undefined },
      { client: 0, ns: "-bad", op: "get", key: 0 },
      { client: 0, ns: "a".repeat(65), op: "set", key: 0, value: "x", ttl: undefined },
      { ...c0, op: "set", key: 0, value: "changed", ttl: NaN },
      { ...c0, op: "set", key: 0, value: "changed", ttl: -1 },
      { ...c0, op: "touch", key: 0, ttl: Infinity },
      { ...c0, op: "wrap", key: 0, value: "changed", ttl: -5, grace: undefined },
      { ...c0, op: "getMany", keys: [0, 3] },
    ],
  },
];
