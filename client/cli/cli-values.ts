import { CONTENT_TYPE_JSON, CONTENT_TYPE_TAGGED_JSON, CONTENT_TYPE_TEXT, jsonSerializer, type Serializer } from "../serializer.js";
import { UsageError } from "./cli-args.js";

/** A stored value as the server holds it: its bytes and content type, not decoded. */
export interface StoredBytes {
  readonly bytes: Uint8Array;
  readonly contentType: string;
}

/** Encodes as the SDK does; decodes nothing, so that `get` can print exactly what is stored. */
export const storedBytesSerializer: Serializer = {
  encode: (value) => jsonSerializer.encode(value),
  decode: (bytes, contentType): StoredBytes => ({ bytes, contentType }),
};

const INTEGER = /^-?\d+$/;

function hasUnsafeInteger(value: unknown): boolean {
  if (typeof value === "number") return Number.isInteger(value) && !Number.isSafeInteger(value);
  if (typeof value !== "object" || value === null) return false;
  return Object.values(value).some(hasUnsafeInteger);
}

/**
 * VALUE of `set`: JSON when it parses, else the string itself. An integer
 * beyond ±(2^53-1) is stored as a BigInt at the top level; inside JSON it
 * would be rounded, so it is refused.
 */
export function parseValue(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    return text;
  }
  if (INTEGER.test(text.trim()) && !Number.isSafeInteger(value)) return BigInt(text.trim());
  if (hasUnsafeInteger(value)) throw new UsageError("VALUE holds an integer beyond 2^53 that JSON numbers would round; quote it as a string");
  return value;
}

const STORED_UNDEFINED = '{"$t":"undefined"}';

/**
 * The text `get` prints for a stored value: the stored JSON as it is, tags
 * included (`{"$t":"Map","v":[...]}`, the tagged format of the README), a
 * string for text, binary as a Bytes tag; undefined for a stored `undefined`,
 * which reads like a miss.
 */
export function printable({ bytes, contentType }: StoredBytes): string | undefined {
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  if (type === CONTENT_TYPE_JSON) return text;
  if (type === CONTENT_TYPE_TAGGED_JSON) return text === STORED_UNDEFINED ? undefined : text;
  if (type === CONTENT_TYPE_TEXT) return JSON.stringify(text);
  return JSON.stringify({ $t: "Bytes", v: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64") });
}
