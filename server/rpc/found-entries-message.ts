import type { DescMessage } from "@bufbuild/protobuf";
import { wireFieldOf, type WireKind } from "../../core/wire/compiled-codec.js";
import { EncodedMessage } from "../../core/wire/encoded-message.js";
import { utf8Length, writeText } from "../../core/wire/text-write.js";
import { varintSize, writeVarint } from "../../core/wire/varint.js";
import { FoundEntrySchema, StreamGetResponseSchema, Tier } from "../../gen/tiercache/v1/cache_pb.js";
import type { TierName } from "../engine/durable-tier.js";
import type { FoundInPlace } from "../engine/cache-engine.js";

/**
 * StreamGet's response messages, written straight from the values the
 * engine found ({@link FoundInPlace}): each value is copied once, from its
 * envelope into the response, with no message objects, value views or
 * BigInts on the way. The bytes are those protobuf-es writes for the same
 * message (test/unit/found-entries-message.test.ts checks it on random
 * entries); field numbers and kinds are read from the schema at start-up.
 */

/** The wire number of each tier name. */
export const TIER_NUMBERS: Readonly<Record<TierName, Tier>> = { memory: Tier.MEMORY, lmdb: Tier.LMDB, redis: Tier.REDIS };

/** The tag of `schema`'s field `name`, which must be written as `kind`: the contract changing under this writer stops the server at start. */
function tagOf(schema: DescMessage, name: string, kind: WireKind): number {
  const field = schema.fields.find((f) => f.localName === name);
  const wire = field === undefined ? undefined : wireFieldOf(field);
  if (field === undefined || field.oneof !== undefined || wire?.kind !== kind) {
    throw new Error(`${schema.typeName}.${name} is not a ${kind} field: found-entries-message.ts must follow the contract`);
  }
  return wire.tag;
}

const KEY = tagOf(FoundEntrySchema, "key", "string");
const VALUE = tagOf(FoundEntrySchema, "value", "bytes");
const CONTENT_TYPE = tagOf(FoundEntrySchema, "contentType", "string");
const TTL_REMAINING = tagOf(FoundEntrySchema, "ttlRemainingMs", "int64");
const TIER = tagOf(FoundEntrySchema, "tier", "int32");
const STALE = tagOf(FoundEntrySchema, "stale", "bool");
const FRESH_REMAINING = tagOf(FoundEntrySchema, "freshRemainingMs", "int64");
const STREAM_ENTRIES = tagOf(StreamGetResponseSchema, "entries", "messages");
const STREAM_MISSING = tagOf(StreamGetResponseSchema, "missing", "strings");

/**
 * The writer writes each message's fields in number order, as protobuf-es
 * does, and each tag as one byte (field numbers below 16): a contract that
 * no longer allows either stops the server at start.
 */
for (const tags of [[KEY, VALUE, CONTENT_TYPE, TTL_REMAINING, TIER, STALE, FRESH_REMAINING], [STREAM_ENTRIES, STREAM_MISSING]]) {
  if (!tags.every((tag, i) => tag < 0x80 && (i === 0 || tag > tags[i - 1]!))) throw new Error("found-entries-message.ts writes one-byte tags in number order; the contract no longer allows that");
}

/** Bytes of a length-delimited field of `n` bytes (with its one-byte tag), nothing when empty. */
function delimitedSize(n: number): number {
  return n === 0 ? 0 : 1 + varintSize(n) + n;
}

/** Bytes of a varint field (with its one-byte tag), nothing when 0. */
function varintFieldSize(n: number): number {
  return n === 0 ? 0 : 1 + varintSize(n);
}

/**
 * Measures each entry's body into `lengths` (two numbers per entry: its
 * key's UTF-8 length and its body's) and returns the bytes the entries take
 * as length-delimited fields.
 */
function measureEntries(entries: readonly FoundInPlace[], lengths: Uint32Array): number {
  let total = 0;
  for (let i = 0, at = 0; i < entries.length; i++, at += 2) {
    const e = entries[i]!;
    const keyBytes = utf8Length(e.key);
    const body =
      delimitedSize(keyBytes) +
      delimitedSize(e.bytes.byteLength - e.valueStart) +
      delimitedSize(e.contentTypeBytes.byteLength) +
      varintFieldSize(e.ttlRemainingMs) +
      varintFieldSize(TIER_NUMBERS[e.tier]) +
      (e.stale ? 2 : 0) +
      varintFieldSize(e.freshRemainingMs);
    lengths[at] = keyBytes;
    lengths[at + 1] = body;
    total += 1 + varintSize(body) + body;
  }
  return total;
}

function writeBytes(buf: Buffer, p: number, bytes: Uint8Array, start: number, n: number): number {
  buf.set(start === 0 && n === bytes.byteLength ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset + start, n), p);
  return p + n;
}

function writeEntries(buf: Buffer, p: number, entries: readonly FoundInPlace[], tag: number, lengths: Uint32Array): number {
  for (let i = 0, at = 0; i < entries.length; i++, at += 2) {
    const e = entries[i]!;
    buf[p++] = tag;
    p = writeVarint(buf, p, lengths[at + 1]!);
    const keyBytes = lengths[at]!;
    if (keyBytes !== 0) {
      buf[p++] = KEY;
      p = writeText(buf, writeVarint(buf, p, keyBytes), e.key, keyBytes);
    }
    const valueBytes = e.bytes.byteLength - e.valueStart;
    if (valueBytes !== 0) {
      buf[p++] = VALUE;
      p = writeBytes(buf, writeVarint(buf, p, valueBytes), e.bytes, e.valueStart, valueBytes);
    }
    const typeBytes = e.contentTypeBytes.byteLength;
    if (typeBytes !== 0) {
      buf[p++] = CONTENT_TYPE;
      p = writeBytes(buf, writeVarint(buf, p, typeBytes), e.contentTypeBytes, 0, typeBytes);
    }
    if (e.ttlRemainingMs !== 0) {
      buf[p++] = TTL_REMAINING;
      p = writeVarint(buf, p, e.ttlRemainingMs);
    }
    const tier = TIER_NUMBERS[e.tier];
    if (tier !== 0) {
      buf[p++] = TIER;
      p = writeVarint(buf, p, tier);
    }
    if (e.stale) {
      buf[p++] = STALE;
      buf[p++] = 1;
    }
    if (e.freshRemainingMs !== 0) {
      buf[p++] = FRESH_REMAINING;
      p = writeVarint(buf, p, e.freshRemainingMs);
    }
  }
  return p;
}

/** A StreamGetResponse of `entries`, then the `missing` keys. */
export function streamGetResponseOf(entries: readonly FoundInPlace[], missing: readonly string[]): EncodedMessage<typeof StreamGetResponseSchema> {
  const lengths = new Uint32Array(entries.length * 2);
  let total = measureEntries(entries, lengths);
  const missingBytes = missing.map(utf8Length);
  for (const n of missingBytes) total += 1 + varintSize(n) + n;
  return new EncodedMessage(total, (buf) => {
    let p = writeEntries(buf, 0, entries, STREAM_ENTRIES, lengths);
    for (let i = 0; i < missing.length; i++) {
      buf[p++] = STREAM_MISSING;
      p = writeText(buf, writeVarint(buf, p, missingBytes[i]!), missing[i]!, missingBytes[i]!);
    }
    return p;
  });
}
