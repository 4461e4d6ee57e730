import { InvalidArgumentError } from "../../core/errors.js";

/** LMDB's largest key as lmdb-js opens an environment without a `pageSize` (its DEFAULT_MAX_KEY_SIZE). */
export const LMDB_MAX_KEY_BYTES = 1978;

const EXPIRES_AT_BYTES = 8;
/** Namespaces are at most 64 ASCII characters (server/engine/validation.ts). */
const LONGEST_NAMESPACE_BYTES = 64;
const SEPARATOR = 0x00;

/**
 * The longest key, in UTF-8 bytes, that the LMDB tier stores in every
 * namespace: LMDB's limit less the expiry index's overhead (expiry time,
 * longest namespace, separator).
 */
export const LMDB_TIER_MAX_KEY_BYTES = LMDB_MAX_KEY_BYTES - EXPIRES_AT_BYTES - LONGEST_NAMESPACE_BYTES - 1;

const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * The LMDB key of a value: the namespace's UTF-8 bytes, 0x00, the key's UTF-8
 * bytes. One-to-one because a namespace never contains U+0000 and UTF-8 is
 * one-to-one on well-formed strings; keys may contain anything, U+0000 included.
 */
export function valueKey(namespace: string, key: string): Buffer {
  if (namespace.includes("\u0000")) throw new InvalidArgumentError("a namespace must not contain U+0000");
  if (LONE_SURROGATE.test(key)) throw new InvalidArgumentError("a key must be well-formed Unicode (it holds a lone surrogate)");
  const namespaceBytes = Buffer.byteLength(namespace, "utf8");
  const out = Buffer.allocUnsafe(namespaceBytes + 1 + Buffer.byteLength(key, "utf8"));
  out.write(namespace, 0, "utf8");
  out[namespaceBytes] = SEPARATOR;
  out.write(key, namespaceBytes + 1, "utf8");
  return out;
}

/** The value keys of exactly one namespace: `start` inclusive, `end` exclusive (never a namespace it is a prefix of). */
export function namespaceRange(namespace: string): { start: Buffer; end: Buffer } {
  const start = valueKey(namespace, "");
  const end = Buffer.from(start);
  end[end.length - 1] = SEPARATOR + 1;
  return { start, end };
}

function writeExpiresAt(target: Buffer, expiresAt: number): void {
  target.writeUInt32BE(Math.floor(expiresAt / 2 ** 32), 0);
  target.writeUInt32BE(expiresAt % 2 ** 32, 4);
}

/** The expiry index key of a value: expiresAt as 8 bytes big-endian, then its value key, so that keys sort by expiry. */
export function expiryKey(expiresAt: number, value: Buffer): Buffer {
  const out = Buffer.allocUnsafe(EXPIRES_AT_BYTES + value.length);
  writeExpiresAt(out, expiresAt);
  value.copy(out, EXPIRES_AT_BYTES);
  return out;
}

/** The exclusive end of the expiry index keys of values expired at `now` (expiresAt <= now). */
export function expiredBefore(now: number): Buffer {
  const out = Buffer.alloc(EXPIRES_AT_BYTES);
  writeExpiresAt(out, now + 1);
  return out;
}

/** The expiry time and value key held in an expiry index key. */
export function parseExpiryKey(key: Uint8Array): { expiresAt: number; value: Buffer } {
  const bytes = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  return { expiresAt: bytes.readUInt32BE(0) * 2 ** 32 + bytes.readUInt32BE(4), value: bytes.subarray(EXPIRES_AT_BYTES) };
}
