/**
 * The client's pluggable value serializer, and the default one.
 *
 * Wire format of {@link jsonSerializer} (written so other languages can read
 * and write it):
 *
 * 1. A top-level `Uint8Array`/`Buffer` is stored raw with content type
 *    `application/octet-stream` and decodes to a `Buffer`.
 * 2. Any other value is JSON (UTF-8). If it holds nothing JSON cannot
 *    represent exactly, it is written with content type `application/json`
 *    and the bytes are exactly `JSON.stringify(value)`.
 * 3. Otherwise it is written as `application/vnd.tiercache.tagged+json`:
 *    JSON in which every value below is replaced by a tag object
 *    `{"$t": <type>, "v": <payload>}`:
 *
 *    | value                                  | tag                                         |
 *    |----------------------------------------|---------------------------------------------|
 *    | `undefined` (also array holes)         | `{"$t":"undefined"}` (no `v`)               |
 *    | `Date`                                 | `{"$t":"Date","v":"<ISO 8601>"}`, `v: null` for an invalid date |
 *    | `BigInt`                               | `{"$t":"BigInt","v":"<decimal>"}`           |
 *    | `Map`                                  | `{"$t":"Map","v":[[k, v], ...]}` (insertion order; keys and values encoded) |
 *    | `Set`                                  | `{"$t":"Set","v":[...]}` (insertion order)  |
 *    | nested `Uint8Array`/`Buffer`           | `{"$t":"Bytes","v":"<base64, RFC 4648 §4, padded>"}` |
 *    | `NaN`, `Infinity`, `-Infinity`, `-0`   | `{"$t":"Number","v":"NaN"}`, `"Infinity"`, `"-Infinity"`, `"-0"` |
 *
 *    In this format a plain object that itself has an own `"$t"` key is
 *    escaped as `{"$t":"Object","v":{...}}` (its members still encoded), so
 *    every object with a `"$t"` key is a tag. Plain `application/json` output
 *    never escapes anything.
 *
 * Decoding by content type (parameters such as `; charset=utf-8` are ignored,
 * the media type is case-insensitive):
 * - `application/json`: `JSON.parse` only; a `"$t"` object stays as is.
 * - `application/vnd.tiercache.tagged+json`: parse, then revive tags.
 * - `application/octet-stream`: a `Buffer` of the bytes.
 * - `text/plain`: the UTF-8 string.
 * - anything else, or empty: a `Buffer` of the bytes.
 *
 * Round trips are lossless for strings, booleans, null, numbers (all of
 * them), bigints, undefined (top level, array elements, and object properties,
 * which come back as own properties), Dates, Maps, Sets, binary (as `Buffer`),
 * arrays and plain objects, nested in any way. Array holes come back as
 * `undefined` elements.
 *
 * Everything else follows `JSON.stringify`: class instances honour `toJSON`
 * or become plain objects of their own enumerable string-keyed properties;
 * boxed primitives are unboxed; symbol keys, non-enumerable properties and
 * extra array properties are dropped. A cycle, a function or symbol value,
 * or a built-in whose state JSON cannot see (typed arrays other than
 * `Uint8Array`, `DataView`, `ArrayBuffer`, `Error`, `RegExp`, `WeakMap`,
 * `WeakSet`, `WeakRef`, `Promise`) without a `toJSON`, anywhere, throws
 * {@link UnserializableError}.
 */
import { CorruptValueError } from "../core/errors.js";

/** Turns application values into bytes plus a content type, and back. */
export interface Serializer {
  /**
   * Serializes `value`; throws a `TypeError` if it cannot be represented.
   * The bytes may share memory with `value` (the default returns a
   * `Uint8Array` value itself): `wrap`, whose write is sent after it
   * returns, sends a copy of them.
   */
  encode(value: unknown): { bytes: Uint8Array; contentType: string };
  /**
   * Deserializes bytes stored with `contentType`. `bytes` is a view into a
   * whole response: a value the client's local tier keeps must not hold on
   * to it (copy what you keep of it), or it keeps the response in memory past
   * the tier's `maxBytes`. A `Uint8Array` returned as the value itself is
   * copied by the local tier when it views a larger buffer.
   */
  decode(bytes: Uint8Array, contentType: string): unknown;
}

export const CONTENT_TYPE_JSON = "application/json";
export const CONTENT_TYPE_TAGGED_JSON = "application/vnd.tiercache.tagged+json";
export const CONTENT_TYPE_BINARY = "application/octet-stream";
/** Decode only: UTF-8 bytes become a string. */
export const CONTENT_TYPE_TEXT = "text/plain";

/** The tag key of the tagged JSON format. */
const TAG = "$t";
const UNDEFINED_TAG = Object.freeze({ [TAG]: "undefined" });

type Tag = { [TAG]: string; v?: unknown };
type JsonObject = Record<string, unknown>;

/**
 * A value the serializer cannot encode (a function, a symbol, a cycle...):
 * writes reject with it before anything is sent. It is a `TypeError`;
 * `path` leads from the value to the part that failed.
 */
export class UnserializableError extends TypeError {
  /** Keys and indexes from the value (whose own entry is "") down to the part that cannot be encoded. */
  readonly path: (string | number)[] = [];
  /** Why, without the path. */
  readonly reason: string;

  /** @internal `key` is where the walk stood; callers up the value prepend theirs. */
  constructor(reason: string, key: string | number) {
    super(reason);
    this.name = "UnserializableError";
    this.reason = reason;
    this.path.push(key);
  }

  /** Rewrites the message once the full path is known. */
  finish(): TypeError {
    const where = this.path
      .slice(1)
      .map((k) => (typeof k === "number" ? `[${k}]` : `[${JSON.stringify(k)}]`))
      .join("");
    this.message = `${this.reason} at value${where}`;
    return this;
  }
}

/**
 * One pass over a value. Returns the value itself when `JSON.stringify` would
 * already write it exactly, else a copy with tags in place; sets `tagged` when
 * any tag was needed. Copies are made only on the path to a tag.
 */
class TaggingWalk {
  /** A tag was produced: the value needs the tagged format. */
  tagged = false;
  /** An object with an own "$t" key was seen (must be escaped in the tagged format). */
  sawTagKey = false;
  readonly #escapeTagKeys: boolean;
  /** The objects being walked, root first, to detect cycles. */
  readonly #ancestors: object[] = [];

  constructor(escapeTagKeys: boolean) {
    this.#escapeTagKeys = escapeTagKeys;
  }

  /** Walks the root value, turning internal errors into a TypeError naming the path. */
  root(value: unknown): unknown {
    try {
      return this.walk(value, "");
    } catch (err) {
      throw err instanceof UnserializableError ? err.finish() : err;
    }
  }

  walk(value: unknown, key: string | number): unknown {
    switch (typeof value) {
      case "string":
      case "boolean":
        return value;
      case "number":
        if (Number.isFinite(value) && !Object.is(value, -0)) return value;
        return this.#tag("Number", Object.is(value, -0) ? "-0" : String(value));
      case "undefined":
        this.tagged = true;
        return UNDEFINED_TAG;
      case "bigint":
        return this.#tag("BigInt", value.toString());
      case "object":
        return value === null ? null : this.#walkObject(value, key);
      default:
        throw new UnserializableError(`cannot serialize a ${typeof value} value`, key);
    }
  }

  #tag(type: string, payload: unknown): Tag {
    this.tagged = true;
    return { [TAG]: type, v: payload };
  }

  #walkObject(value: object, key: string | number): unknown {
    if (value instanceof Uint8Array) {
      return this.#tag("Bytes", Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64"));
    }
    if (value instanceof Date) {
      const time = value.getTime();
      return this.#tag("Date", Number.isNaN(time) ? null : value.toISOString());
    }
    const lossy = typeof (value as { toJSON?: unknown }).toJSON === "function" ? undefined : lossyBuiltIn(value);
    if (lossy !== undefined) throw new UnserializableError(`cannot serialize a ${lossy} (it would come back as a plain object); give it a toJSON or convert it`, key);
    const ancestors = this.#ancestors;
    if (ancestors.includes(value)) throw new UnserializableError("cannot serialize a cyclic structure", key);
    ancestors.push(value);
    let result: unknown;
    try {
      if (Array.isArray(value)) {
        result = this.#walkArray(value);
      } else {
        const proto: unknown = Object.getPrototypeOf(value);
        if ((proto === Object.prototype || proto === null) && typeof (value as JsonObject)["toJSON"] !== "function") {
          result = this.#walkMembers(value as JsonObject, true);
        } else if (value instanceof Map) {
          const pairs: unknown[] = [];
          for (const [k, v] of value) pairs.push([this.walk(k, "<map key>"), this.walk(v, mapPathKey(k))]);
          result = this.#tag("Map", pairs);
        } else if (value instanceof Set) {
          const items: unknown[] = [];
          let i = 0;
          for (const item of value) items.push(this.walk(item, i++));
          result = this.#tag("Set", items);
        } else {
          result = this.#walkOther(value, key);
        }
      }
    } catch (err) {
      if (err instanceof UnserializableError) err.path.unshift(key);
      throw err;
    }
    ancestors.pop();
    return result;
  }

  #walkArray(array: readonly unknown[]): unknown {
    let copy: unknown[] | undefined;
    for (let i = 0; i < array.length; i++) {
      const item = array[i];
      const walked = typeof item === "string" || typeof item === "boolean" ? item : this.walk(item, i);
      if (copy === undefined && walked !== item) copy = array.slice(0, i);
      if (copy !== undefined) copy.push(walked);
    }
    return copy ?? array;
  }

  /** Class instances (toJSON honoured) and boxed primitives, as JSON.stringify sees them. */
  #walkOther(value: object, key: string | number): unknown {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") {
      const json: unknown = toJSON.call(value, String(key));
      if (json !== value) {
        // JSON.stringify calls toJSON again on an unchanged value and gets the same result.
        const walked = this.walk(json, key);
        return walked === json ? value : walked;
      }
    } else if (value instanceof Number || value instanceof String || value instanceof Boolean || value instanceof BigInt) {
      const primitive: unknown = value.valueOf();
      const walked = this.walk(primitive, key);
      return walked === primitive ? value : walked;
    }
    return this.#walkMembers(value as JsonObject, false);
  }

  /**
   * The own enumerable string-keyed members. `plain` objects (prototype
   * Object.prototype or null) inherit no enumerable keys, so the faster
   * for-in needs no own-property check.
   */
  #walkMembers(object: JsonObject, plain: boolean): unknown {
    let copy: JsonObject | undefined;
    let hasTagKey = false;
    for (const k in object) {
      if (!plain && !Object.hasOwn(object, k)) continue;
      if (k === TAG) hasTagKey = true;
      const member = object[k];
      const walked = typeof member === "string" || typeof member === "boolean" ? member : this.walk(member, k);
      if (copy === undefined && walked !== member) copy = copyMembersBefore(object, k, plain);
      if (copy !== undefined) setOwn(copy, k, walked);
    }
    if (hasTagKey) {
      this.sawTagKey = true;
      if (this.#escapeTagKeys) return this.#tag("Object", copy ?? object);
    }
    return copy ?? object;
  }
}

/**
 * The name of a built-in whose state JSON.stringify does not see (typed
 * arrays other than Uint8Array, Error, RegExp, weak collections...), so that
 * it would come back as `{}` or an index-keyed object; undefined otherwise.
 */
function lossyBuiltIn(value: object): string | undefined {
  if (ArrayBuffer.isView(value)) return value.constructor.name || "typed array";
  if (value instanceof ArrayBuffer) return "ArrayBuffer";
  if (typeof SharedArrayBuffer === "function" && value instanceof SharedArrayBuffer) return "SharedArrayBuffer";
  if (value instanceof Error) return value.name || "Error";
  if (value instanceof RegExp) return "RegExp";
  if (value instanceof WeakMap) return "WeakMap";
  if (value instanceof WeakSet) return "WeakSet";
  if (value instanceof WeakRef) return "WeakRef";
  if (value instanceof Promise) return "Promise";
  return undefined;
}

/** A new object with the members of `object` that come before `stop`. */
function copyMembersBefore(object: JsonObject, stop: string, plain: boolean): JsonObject {
  const copy: JsonObject = {};
  for (const k in object) {
    if (k === stop) break;
    if (plain || Object.hasOwn(object, k)) setOwn(copy, k, object[k]);
  }
  return copy;
}

function mapPathKey(key: unknown): string {
  return typeof key === "string" || typeof key === "number" ? `<map value ${String(key)}>` : "<map value>";
}

/** Defines an own enumerable property, even for the key "__proto__". */
function setOwn(object: JsonObject, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

/** Reverses the tagging of a freshly parsed tagged-JSON value, in place where possible. */
function revive(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = revive(value[i]);
    return value;
  }
  const object = value as JsonObject;
  return Object.hasOwn(object, TAG) ? reviveTag(object) : reviveMembers(object);
}

function reviveMembers(object: JsonObject): JsonObject {
  for (const key of Object.keys(object)) {
    const member = object[key];
    // Own key (from JSON.parse), so plain assignment is safe even for "__proto__".
    if (typeof member === "object" && member !== null) object[key] = revive(member);
  }
  return object;
}

const NUMBER_TAGS: Readonly<Record<string, number>> = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity, "-0": -0 };
const BIGINT_PATTERN = /^-?[0-9]+$/;
const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;

function reviveTag(tag: JsonObject): unknown {
  const type = tag[TAG];
  const payload = tag["v"];
  const memberCount = Object.keys(tag).length;
  if (type === "undefined") {
    if (memberCount === 1) return undefined;
  } else if (memberCount === 2 && Object.hasOwn(tag, "v")) {
    switch (type) {
      case "Number":
        if (typeof payload === "string" && Object.hasOwn(NUMBER_TAGS, payload)) return NUMBER_TAGS[payload];
        break;
      case "BigInt":
        if (typeof payload === "string" && BIGINT_PATTERN.test(payload)) return BigInt(payload);
        break;
      case "Date": {
        if (payload === null) return new Date(NaN);
        const date = typeof payload === "string" ? new Date(payload) : undefined;
        if (date !== undefined && !Number.isNaN(date.getTime())) return date;
        break;
      }
      case "Bytes":
        if (typeof payload === "string" && payload.length % 4 === 0 && BASE64_PATTERN.test(payload)) {
          return bytesOfBase64(payload);
        }
        break;
      case "Map":
        if (Array.isArray(payload)) {
          const map = new Map<unknown, unknown>();
          for (const pair of payload) {
            if (!Array.isArray(pair) || pair.length !== 2) throw corrupt("a Map entry is not a [key, value] pair");
            map.set(revive(pair[0]), revive(pair[1]));
          }
          return map;
        }
        break;
      case "Set":
        if (Array.isArray(payload)) {
          const set = new Set<unknown>();
          for (const item of payload) set.add(revive(item));
          return set;
        }
        break;
      case "Object":
        if (typeof payload === "object" && payload !== null && !Array.isArray(payload)) {
          return reviveMembers(payload as JsonObject);
        }
        break;
    }
  }
  throw corrupt(`invalid tag ${JSON.stringify(tag).slice(0, 80)}`);
}

/** The bytes of checked base64 text, in a buffer of their own: `Buffer.from(text, "base64")` takes small ones from Node's shared 8 KiB pool, which a value kept in a local tier would hold whole. */
function bytesOfBase64(text: string): Buffer {
  const length = Buffer.byteLength(text, "base64");
  const bytes = Buffer.allocUnsafeSlow(length);
  bytes.write(text, "base64");
  return bytes;
}

function corrupt(message: string, cause?: unknown): CorruptValueError {
  return new CorruptValueError(`cannot decode ${CONTENT_TYPE_TAGGED_JSON}: ${message}`, { cause });
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function parseJson(bytes: Uint8Array, contentType: string): unknown {
  try {
    return JSON.parse(asBuffer(bytes).toString("utf8"));
  } catch (err) {
    throw new CorruptValueError(`cannot decode ${contentType}: ${(err as Error).message}`, { cause: err });
  }
}

/** The media type without parameters, lower-cased: "Text/Plain; charset=utf-8" -> "text/plain". */
function mediaType(contentType: string): string {
  const semicolon = contentType.indexOf(";");
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

/** The default serializer: JSON, tagged JSON for values plain JSON would alter, raw bytes for binary. */
export const jsonSerializer: Serializer = {
  encode(value: unknown): { bytes: Uint8Array; contentType: string } {
    if (value instanceof Uint8Array) return { bytes: value, contentType: CONTENT_TYPE_BINARY };
    const walk = new TaggingWalk(false);
    const walked = walk.root(value);
    if (!walk.tagged) {
      const text = JSON.stringify(value) as string | undefined;
      if (text === undefined) throw new TypeError("cannot serialize the value: JSON.stringify returned undefined");
      return { bytes: Buffer.from(text, "utf8"), contentType: CONTENT_TYPE_JSON };
    }
    // Rare: user objects with a "$t" key need escaping; walk again, escaping them.
    const tagged = walk.sawTagKey ? new TaggingWalk(true).root(value) : walked;
    return { bytes: Buffer.from(JSON.stringify(tagged), "utf8"), contentType: CONTENT_TYPE_TAGGED_JSON };
  },

  decode(bytes: Uint8Array, contentType: string): unknown {
    const type =
      contentType === CONTENT_TYPE_JSON || contentType === CONTENT_TYPE_TAGGED_JSON || contentType === CONTENT_TYPE_BINARY
        ? contentType
        : mediaType(contentType);
    switch (type) {
      case CONTENT_TYPE_JSON:
        return parseJson(bytes, type);
      case CONTENT_TYPE_TAGGED_JSON:
        return revive(parseJson(bytes, type));
      case CONTENT_TYPE_TEXT:
        return asBuffer(bytes).toString("utf8");
      default:
        return asBuffer(bytes);
    }
  },
};
