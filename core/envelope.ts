import { CorruptValueError, InvalidArgumentError } from "./errors.js";
import { MAX_TAG_BYTES, MAX_TAGS_PER_ENTRY } from "./tag-rules.js";
import { strictUtf8 } from "./utf8.js";

/**
 * The stored value envelope, and the rules every tier applies to it. Every
 * tier (the server's memory tier, LMDB, Redis and its Lua scripts) stores a
 * value as one byte string:
 *
 * ```
 * offset 0   u8   format version = 1
 * offset 1   u8   flags: bit0 = payload is zstd-compressed; bit1 = a freshUntil
 *                  field follows the content type; bit2 = a tag section
 *                  follows (after freshUntil, if any); other bits must be 0
 * offset 2   f64  expiresAt, big-endian, ms since epoch, 0 = never (integers only)
 * offset 10  u32  original (uncompressed) payload length, big-endian
 * offset 14  u8   content-type length N (0..255)
 * offset 15  N bytes content type (UTF-8)
 * [offset 15+N  f64 freshUntil, big-endian, ms since epoch, only when bit1 is set]
 * [tag section, only when bit2 is set:
 *                 f64 tagEpoch, big-endian: the namespace's tag epoch when written
 *                 u8  count T (1..16)
 *                 T × (u8 length L (1..128), L bytes tag, UTF-8)]
 * then            payload
 * ```
 *
 * Tags: a value with tags is served only while none of its tags has an
 * invalidation epoch above its tagEpoch (see server/engine/tag-clock.ts); a
 * value without tags has no tag section and costs nothing more.
 *
 * The rules: a value is **fresh** before its freshUntil (its expiresAt when it
 * has no grace period), **stale** from then until expiresAt (served only to
 * callers that accept stale values: GetOrLease), and **gone** from expiresAt
 * on. 0 means never. Touch gives a new expiresAt and ends any grace period.
 */

/** The envelope format version this code writes and reads. */
export const ENVELOPE_VERSION = 1;
/** Offset of the u8 flags. */
export const FLAGS_OFFSET = 1;
/** Flags bit: the payload is one or more zstd frames. */
export const FLAG_COMPRESSED = 0x01;
/** Flags bit: an f64 `freshUntil` follows the content type (the value has a grace period). */
export const FLAG_FRESH_UNTIL = 0x02;
/** Flags bit: a tag section (tagEpoch and tags) follows freshUntil, or the content type when there is none. */
export const FLAG_TAGS = 0x04;
/** Every flag this version knows. */
export const KNOWN_FLAGS = FLAG_COMPRESSED | FLAG_FRESH_UNTIL | FLAG_TAGS;
/** Size of the fixed part of the envelope, before the content type. */
export const ENVELOPE_HEADER_BYTES = 15;
/** Offset of the big-endian f64 `expiresAt`. */
export const EXPIRES_AT_OFFSET = 2;
/** Offset of the big-endian u32 original payload length. */
export const ORIGINAL_LENGTH_OFFSET = 10;
/** Offset of the u8 content-type length. */
export const CONTENT_TYPE_LENGTH_OFFSET = 14;
/** Longest content type, in UTF-8 bytes. */
export const MAX_CONTENT_TYPE_BYTES = 255;
/** Size of the optional `freshUntil` field. */
export const FRESH_UNTIL_BYTES = 8;
/** Largest tag section: tagEpoch, count, and 16 tags of 128 bytes with their lengths (see core/tag-rules.ts). */
export const MAX_TAG_SECTION_BYTES = 8 + 1 + MAX_TAGS_PER_ENTRY * (1 + MAX_TAG_BYTES);
/** A prefix this long always holds everything the rules read (header, longest content type, freshUntil, tag section). */
export const ENVELOPE_RULES_BYTES = ENVELOPE_HEADER_BYTES + MAX_CONTENT_TYPE_BYTES + FRESH_UNTIL_BYTES + MAX_TAG_SECTION_BYTES;

/** Where a value stands at some moment. */
export type Freshness = "fresh" | "stale" | "gone";

/** The two moments that decide a value's {@link Freshness}. */
export interface EnvelopeTimes {
  /** ms since epoch when it is gone; 0 = never. */
  readonly expiresAt: number;
  /** ms since epoch when it turns stale (equals expiresAt without grace); 0 = never. */
  readonly freshUntil: number;
}

/** Rejects a non-integer, negative or unsafe moment. */
export function checkMoment(name: string, ms: number): void {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new InvalidArgumentError(`${name} must be a non-negative integer of ms since epoch (0 = never), got ${ms}`);
  }
}

/** Checks the fixed header is present and of our version. */
export function checkHeader(envelope: Uint8Array): void {
  if (envelope.length < ENVELOPE_HEADER_BYTES) {
    throw new CorruptValueError(`envelope of ${envelope.length} bytes is shorter than its ${ENVELOPE_HEADER_BYTES}-byte header`);
  }
  const version = envelope[0]!;
  if (version !== ENVELOPE_VERSION) throw new CorruptValueError(`unknown envelope version ${version}`);
}

// Big-endian f64 without a DataView per call (as Node's Buffer#readDoubleBE does).
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reads a big-endian f64. */
export function readFloat64BE(bytes: Uint8Array, offset: number): number {
  for (let i = 0; i < 8; i++) f64Bytes[littleEndian ? 7 - i : i] = bytes[offset + i]!;
  return f64[0]!;
}

/** Writes a big-endian f64. */
export function writeFloat64BE(bytes: Uint8Array, offset: number, value: number): void {
  f64[0] = value;
  for (let i = 0; i < 8; i++) bytes[offset + i] = f64Bytes[littleEndian ? 7 - i : i]!;
}

function readMoment(envelope: Uint8Array, offset: number, name: string): number {
  const ms = readFloat64BE(envelope, offset);
  if (!Number.isSafeInteger(ms) || ms < 0) throw new CorruptValueError(`envelope has an invalid ${name} (${ms})`);
  return ms;
}

/** The envelope's expiresAt (header only). @throws CorruptValueError */
export function readExpiresAt(envelope: Uint8Array): number {
  checkHeader(envelope);
  return readMoment(envelope, EXPIRES_AT_OFFSET, "expiresAt");
}

/** The payload's decoded (uncompressed) length, from the header. @throws CorruptValueError */
export function decodedLength(envelope: Uint8Array): number {
  checkHeader(envelope);
  const at = ORIGINAL_LENGTH_OFFSET;
  return envelope[at]! * 0x100_0000 + ((envelope[at + 1]! << 16) | (envelope[at + 2]! << 8) | envelope[at + 3]!);
}

/** Offset of the freshUntil field, or -1 when the envelope has none. @throws CorruptValueError when truncated */
export function freshUntilOffset(envelope: Uint8Array): number {
  checkHeader(envelope);
  if ((envelope[FLAGS_OFFSET]! & FLAG_FRESH_UNTIL) === 0) return -1;
  const at = ENVELOPE_HEADER_BYTES + envelope[CONTENT_TYPE_LENGTH_OFFSET]!;
  if (at + FRESH_UNTIL_BYTES > envelope.byteLength) throw new CorruptValueError("envelope is truncated inside its freshUntil");
  return at;
}

/**
 * The moments of an envelope, or of a prefix of it at least
 * {@link ENVELOPE_RULES_BYTES} long (no decompression).
 *
 * @throws CorruptValueError for a truncated or invalid header.
 */
export function envelopeTimes(envelope: Uint8Array): EnvelopeTimes {
  const expiresAt = readExpiresAt(envelope);
  const at = freshUntilOffset(envelope);
  return { expiresAt, freshUntil: at < 0 ? expiresAt : readMoment(envelope, at, "freshUntil") };
}

/** Where a value with these moments stands at `now`. */
export function freshnessAt(times: EnvelopeTimes, now: number): Freshness {
  if (times.expiresAt !== 0 && times.expiresAt <= now) return "gone";
  if (times.freshUntil !== 0 && times.freshUntil <= now) return "stale";
  return "fresh";
}

/** Where an envelope stands at `now`. @throws CorruptValueError */
export function freshness(envelope: Uint8Array, now: number): Freshness {
  return freshnessAt(envelopeTimes(envelope), now);
}

/** True unless the envelope is gone at `now` (fresh or stale). @throws CorruptValueError */
export function isLive(envelope: Uint8Array, now: number): boolean {
  const expiresAt = readExpiresAt(envelope);
  return expiresAt === 0 || expiresAt > now;
}

/** True when plain reads see the envelope at `now`. @throws CorruptValueError */
export function isFresh(envelope: Uint8Array, now: number): boolean {
  return freshness(envelope, now) === "fresh";
}

/**
 * A copy of the envelope with a new expiresAt and no grace period (for
 * Touch): a freshUntil field, when present, is set to the new expiresAt, so
 * the length stays the same (Redis rewrites it in place).
 *
 * @throws CorruptValueError for a truncated or invalid header.
 * @throws InvalidArgumentError if `expiresAt` is not a non-negative safe integer.
 */
export function withNewExpiry(envelope: Uint8Array, expiresAt: number): Uint8Array {
  checkMoment("expiresAt", expiresAt);
  const at = freshUntilOffset(envelope);
  const copy = new Uint8Array(envelope.byteLength);
  copy.set(envelope);
  writeFloat64BE(copy, EXPIRES_AT_OFFSET, expiresAt);
  if (at >= 0) writeFloat64BE(copy, at, expiresAt);
  return Buffer.from(copy.buffer, copy.byteOffset, copy.byteLength);
}

/** The tags a value was written with, and the namespace's tag epoch at the time. */
export interface TagStamp {
  /** The namespace's tag epoch when the value was written (a non-negative safe integer). */
  readonly epoch: number;
  /** 1 to 16 distinct tags of 1 to 128 UTF-8 bytes (checked by core/tag-rules.ts before). */
  readonly tags: readonly string[];
}

/** Whether the envelope carries a tag section (read from its flags only). */
export function isTagged(envelope: Uint8Array): boolean {
  return (envelope[FLAGS_OFFSET]! & FLAG_TAGS) !== 0;
}

/** Offset of the tag section, or -1 when the envelope has none. @throws CorruptValueError when truncated */
export function tagSectionOffset(envelope: Uint8Array): number {
  checkHeader(envelope);
  const flags = envelope[FLAGS_OFFSET]!;
  if ((flags & FLAG_TAGS) === 0) return -1;
  const at = ENVELOPE_HEADER_BYTES + envelope[CONTENT_TYPE_LENGTH_OFFSET]! + ((flags & FLAG_FRESH_UNTIL) === 0 ? 0 : FRESH_UNTIL_BYTES);
  if (at + 9 > envelope.byteLength) throw new CorruptValueError("envelope is truncated inside its tag section");
  return at;
}

/** The bytes of the tag section of `stamp`. */
export function encodeTagSection(stamp: TagStamp): Buffer {
  checkMoment("tagEpoch", stamp.epoch);
  const encoded = stamp.tags.map((tag) => Buffer.from(tag, "utf8"));
  const section = Buffer.allocUnsafe(9 + encoded.reduce((sum, bytes) => sum + 1 + bytes.byteLength, 0));
  section.writeDoubleBE(stamp.epoch, 0);
  section[8] = encoded.length;
  let at = 9;
  for (const bytes of encoded) {
    section[at++] = bytes.byteLength;
    section.set(bytes, at);
    at += bytes.byteLength;
  }
  return section;
}

/**
 * The tag section of an envelope (or of a prefix at least {@link ENVELOPE_RULES_BYTES}
 * long), its length in bytes included; undefined when it has none.
 *
 * @throws CorruptValueError for a truncated or malformed section.
 */
export function readTagSection(envelope: Uint8Array): (TagStamp & { readonly bytes: number }) | undefined {
  const start = tagSectionOffset(envelope);
  if (start < 0) return undefined;
  const epoch = readMoment(envelope, start, "tagEpoch");
  const count = envelope[start + 8]!;
  if (count === 0 || count > MAX_TAGS_PER_ENTRY) throw new CorruptValueError(`envelope has ${count} tags`);
  const tags: string[] = [];
  let at = start + 9;
  for (let i = 0; i < count; i++) {
    const length = at < envelope.byteLength ? envelope[at]! : 0;
    if (length === 0 || length > MAX_TAG_BYTES || at + 1 + length > envelope.byteLength) throw new CorruptValueError("envelope has a malformed tag");
    try {
      tags.push(strictUtf8.decode(envelope.subarray(at + 1, at + 1 + length)));
    } catch (err) {
      throw new CorruptValueError("envelope has a tag that is not valid UTF-8", { cause: err });
    }
    at += 1 + length;
  }
  return { epoch, tags, bytes: at - start };
}
