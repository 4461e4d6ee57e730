import { createHash } from "node:crypto";

/** Keys longer than this are replaced by a hash of themselves. */
export const MAX_PLAIN_KEY_LENGTH = 200;

function canonical(value: unknown, seen: Set<object>): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "undefined":
      return "undefined";
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    case "bigint":
      return `${value}n`;
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return String(value);
    case "function":
    case "symbol":
      throw new TypeError(`cannot derive a cache key from a ${typeof value}; pass a key function`);
  }
  const object = value as object;
  if (seen.has(object)) throw new TypeError("cannot derive a cache key from a cyclic argument; pass a key function");
  seen.add(object);
  try {
    if (object instanceof Date) return `Date(${Number.isNaN(object.getTime()) ? "invalid" : object.toISOString()})`;
    if (object instanceof Uint8Array) return `Bytes(${Buffer.from(object.buffer, object.byteOffset, object.byteLength).toString("base64")})`;
    if (Array.isArray(object)) return `[${object.map((item) => canonical(item, seen)).join(",")}]`;
    if (object instanceof Map) {
      const entries = [...object].map(([k, v]) => `${canonical(k, seen)}:${canonical(v, seen)}`).sort();
      return `Map{${entries.join(",")}}`;
    }
    if (object instanceof Set) return `Set{${[...object].map((item) => canonical(item, seen)).sort().join(",")}}`;
    const keys = Object.keys(object).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((object as Record<string, unknown>)[k], seen)}`).join(",")}}`;
  } finally {
    seen.delete(object);
  }
}

/**
 * A stable cache key for a function's arguments: the same arguments give the
 * same key in every process and run, whatever the order of object properties,
 * Map entries or Set members. Numbers, strings, booleans, null, undefined,
 * bigint, Date, binary, arrays, Maps, Sets and plain objects are supported;
 * functions, symbols and cycles throw (pass a key function instead). Keys
 * longer than 200 characters become `sha256:<base64url>`.
 */
export function keyFromArguments(prefix: string, args: readonly unknown[]): string {
  const key = `${prefix}:${args.map((arg) => canonical(arg, new Set())).join(",")}`;
  if (key.length <= MAX_PLAIN_KEY_LENGTH) return key;
  return `${prefix}:sha256:${createHash("sha256").update(key).digest("base64url")}`;
}
