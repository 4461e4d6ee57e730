import binding from "zstd-napi/binding.js";
import type { DCtx } from "zstd-napi/binding.js";
import {
  writeFloat64BE,
  checkHeader,
  checkMoment,
  CONTENT_TYPE_LENGTH_OFFSET,
  ENVELOPE_HEADER_BYTES,
  EXPIRES_AT_OFFSET,
  FLAG_COMPRESSED,
  encodeTagSection,
  FLAG_FRESH_UNTIL,
  FLAG_TAGS,
  FLAGS_OFFSET,
  FRESH_UNTIL_BYTES,
  KNOWN_FLAGS,
  MAX_CONTENT_TYPE_BYTES,
  ORIGINAL_LENGTH_OFFSET,
  ENVELOPE_VERSION,
  readExpiresAt,
  readFloat64BE,
  readTagSection,
  withNewExpiry,
  type TagStamp,
} from "./envelope.js";
import { BufferSlab } from "./buffer-slab.js";
import { CompressionOutlook } from "./compression-outlook.js";
import { CorruptValueError, InvalidArgumentError, ValueTooLargeError } from "./errors.js";
import { strictUtf8 } from "./utf8.js";

export {
  CONTENT_TYPE_LENGTH_OFFSET,
  ENVELOPE_HEADER_BYTES,
  ENVELOPE_VERSION,
  EXPIRES_AT_OFFSET,
  FLAG_COMPRESSED,
  FLAG_FRESH_UNTIL,
  MAX_CONTENT_TYPE_BYTES,
  ORIGINAL_LENGTH_OFFSET,
} from "./envelope.js";

/** Largest `maxValueBytes` the u32 length field can describe. */
export const MAX_VALUE_BYTES_LIMIT = 0xffff_ffff;

/** Options of a {@link ValueCodec}. */
export interface CodecOptions {
  /** Payloads at or above this many bytes are zstd-compressed (`Infinity` disables compression). @default 1024 */
  compressionThreshold?: number;
  /** zstd level. @default 1 */
  compressionLevel?: number;
  /** Max payload (uncompressed) bytes accepted by encode and produced by decode. @default 1 MiB */
  maxValueBytes?: number;
}

/** {@link CodecOptions} with defaults applied and values checked. */
export interface ResolvedCodecOptions {
  readonly compressionThreshold: number;
  readonly compressionLevel: number;
  readonly maxValueBytes: number;
}

/** Where an envelope's parts are, and what its header says (see {@link ValueCodec.layout}). */
export interface EnvelopeLayout {
  readonly contentType: string;
  /** Its UTF-8, in memory of its own (read-only). */
  readonly contentTypeBytes: Uint8Array;
  /** ms since epoch, 0 = never. */
  readonly expiresAt: number;
  /** ms since epoch after which the value is stale; 0 = no grace. */
  readonly freshUntil: number;
  readonly tags: TagStamp | undefined;
  /** Whether the payload is zstd-compressed. */
  readonly compressed: boolean;
  /** Where the payload starts; a raw payload runs to the envelope's end. */
  readonly payloadOffset: number;
  /** The value's length (decompressed), checked against maxValueBytes. */
  readonly declared: number;
}

/** A decoded envelope. */
export interface DecodedValue {
  /**
   * The payload. For an uncompressed envelope this is a view into the
   * envelope's memory (no copy): treat it as read-only.
   */
  value: Uint8Array;
  contentType: string;
  /** ms since epoch, 0 = never. */
  expiresAt: number;
  /** Whether the payload was stored zstd-compressed. */
  compressed: boolean;
  /** ms since epoch after which the value is stale (within grace until expiresAt); 0 = no grace. */
  freshUntil: number;
  /** The tags it was written with, and the namespace's tag epoch then; undefined for a value without tags. */
  tags: TagStamp | undefined;
}

/** Counters of a {@link ValueCodec} since creation. */
export interface CodecStats {
  /** Payload bytes given to `encode`, before compression. */
  bytesIn: number;
  /** Payload bytes written into envelopes, after compression. */
  bytesStored: number;
  /** Number of envelopes stored compressed. */
  compressed: number;
  /** Values at or above the threshold stored without trying to compress them: their content type's recent values did not compress (see CompressionOutlook). */
  compressionSkipped: number;
}

/** Applies defaults to `options` and rejects nonsense with an {@link InvalidArgumentError}. */
export function resolveCodecOptions(options: CodecOptions = {}): ResolvedCodecOptions {
  const { compressionThreshold = 1024, compressionLevel = 1, maxValueBytes = 1024 * 1024 } = options;
  if (!(compressionThreshold >= 0) || (!Number.isInteger(compressionThreshold) && compressionThreshold !== Infinity)) {
    throw new InvalidArgumentError(`compressionThreshold must be a non-negative integer or Infinity, got ${compressionThreshold}`);
  }
  const minLevel = binding.minCLevel();
  const maxLevel = binding.maxCLevel();
  if (!Number.isInteger(compressionLevel) || compressionLevel < minLevel || compressionLevel > maxLevel) {
    throw new InvalidArgumentError(`compressionLevel must be an integer in ${minLevel}..${maxLevel}, got ${compressionLevel}`);
  }
  if (!Number.isInteger(maxValueBytes) || maxValueBytes < 0 || maxValueBytes > MAX_VALUE_BYTES_LIMIT) {
    throw new InvalidArgumentError(`maxValueBytes must be an integer in 0..${MAX_VALUE_BYTES_LIMIT}, got ${maxValueBytes}`);
  }
  return Object.freeze({ compressionThreshold, compressionLevel, maxValueBytes });
}

const EMPTY = Buffer.alloc(0);
/** Output chunk of the bounded streaming probe (see `#measure`). */
const PROBE_CHUNK_BYTES = 128 * 1024;

/**
 * Encodes values into envelopes and back, compressing large payloads with zstd.
 *
 * One instance owns one zstd compression and one decompression context and
 * reuses them; it is not meant to be shared across worker threads.
 */
export class ValueCodec {
  /** The resolved options. */
  readonly options: ResolvedCodecOptions;
  readonly #cctx = new binding.CCtx();
  readonly #dctx = new binding.DCtx();
  /** Streaming context for classifying failed decompressions, created on first need. */
  #probe: DCtx | undefined;
  /** Where envelopes are carved from: an envelope may share its memory with others (the engine gives them memory of their own before any tier sees them). */
  readonly #envelopes = new BufferSlab();
  /** Compression output, reused; grows up to compressBound(maxValueBytes). */
  #scratch: Buffer = EMPTY;
  /** One-entry cache of the last content type seen, as string and as UTF-8 (almost every call repeats it). */
  #lastType = "";
  #lastTypeBytes: Uint8Array = EMPTY;
  /** The last content type encoded, and its header template (see `headerTemplate`). */
  #headerType = "";
  #header: Uint8Array = headerTemplate(EMPTY);
  readonly #outlook = new CompressionOutlook();
  #bytesIn = 0;
  #bytesStored = 0;
  #compressedCount = 0;

  constructor(options?: CodecOptions) {
    this.options = resolveCodecOptions(options);
    this.#cctx.setParameter(binding.CParameter.compressionLevel, this.options.compressionLevel);
  }

  /** Counters since creation (a snapshot). */
  get stats(): Readonly<CodecStats> {
    return { bytesIn: this.#bytesIn, bytesStored: this.#bytesStored, compressed: this.#compressedCount, compressionSkipped: this.#outlook.skipped };
  }

  /**
   * Throws what {@link encode} would throw for `value` and `contentType`,
   * without encoding anything: for callers that must refuse bad input before
   * they do any other work.
   */
  check(value: Uint8Array, contentType: string): void {
    if (value.byteLength > this.options.maxValueBytes) {
      throw new ValueTooLargeError(`value of ${value.byteLength} bytes exceeds max-value-bytes (${this.options.maxValueBytes})`);
    }
    this.#headerOf(contentType);
  }

  /**
   * Builds the envelope. Compresses when `value.byteLength >= compressionThreshold`
   * and the compressed payload is smaller; otherwise stores it raw. Values of
   * a content type whose recent values did not compress are stored raw
   * without trying, for a while (see {@link CompressionOutlook}). A small
   * envelope is carved out of a slab it shares with others (see
   * {@link BufferSlab}): copy it into memory of its own to keep it for long.
   *
   * @throws ValueTooLargeError if `value` exceeds `maxValueBytes`.
   * @throws InvalidArgumentError if `contentType` exceeds 255 UTF-8 bytes or
   *   `expiresAt` is not a non-negative safe integer.
   */
  encode(value: Uint8Array, contentType: string, expiresAt: number, freshUntil = 0, tags?: TagStamp): Uint8Array {
    const length = value.byteLength;
    const { maxValueBytes, compressionThreshold } = this.options;
    if (length > maxValueBytes) {
      throw new ValueTooLargeError(`value of ${length} bytes exceeds max-value-bytes (${maxValueBytes})`);
    }
    checkMoment("expiresAt", expiresAt);
    if (freshUntil !== 0) checkMoment("freshUntil", freshUntil);
    const header = this.#headerOf(contentType);
    const tagSection = tags === undefined || tags.tags.length === 0 ? undefined : encodeTagSection(tags);
    const flags = (freshUntil === 0 ? 0 : FLAG_FRESH_UNTIL) | (tagSection === undefined ? 0 : FLAG_TAGS);
    const tagsAt = header.length + (freshUntil === 0 ? 0 : FRESH_UNTIL_BYTES);
    const payloadOffset = tagsAt + (tagSection?.byteLength ?? 0);

    if (length >= compressionThreshold && this.#outlook.shouldTry(contentType)) {
      const bound = binding.compressBound(length);
      if (this.#scratch.byteLength < bound) this.#scratch = Buffer.allocUnsafeSlow(bound);
      const compressedLength = this.#cctx.compress2(this.#scratch, value);
      this.#outlook.record(contentType, compressedLength < length);
      if (compressedLength < length) {
        const envelope = this.#envelopes.take(payloadOffset + compressedLength);
        writeHeader(envelope, FLAG_COMPRESSED | flags, expiresAt, length, header, freshUntil);
        if (tagSection) envelope.set(tagSection, tagsAt);
        this.#scratch.copy(envelope, payloadOffset, 0, compressedLength);
        this.#count(length, compressedLength, 1);
        return envelope;
      }
    }

    const envelope = this.#envelopes.take(payloadOffset + length);
    writeHeader(envelope, flags, expiresAt, length, header, freshUntil);
    if (tagSection) envelope.set(tagSection, tagsAt);
    envelope.set(value, payloadOffset);
    this.#count(length, length, 0);
    return envelope;
  }

  /**
   * Parses an envelope and, if flagged, decompresses its payload.
   *
   * @throws CorruptValueError for a malformed or truncated envelope, an unknown
   *   version or flags, or a payload that does not match its declared length.
   * @throws ValueTooLargeError if the declared or actual payload size exceeds
   *   `maxValueBytes`. Decompression never produces more than the declared
   *   length, so a zstd bomb is refused without being expanded.
   */
  decode(envelope: Uint8Array): DecodedValue {
    const layout = this.layout(envelope);
    return {
      value: this.payload(envelope, layout),
      contentType: layout.contentType,
      expiresAt: layout.expiresAt,
      compressed: layout.compressed,
      freshUntil: layout.freshUntil,
      tags: layout.tags,
    };
  }

  /**
   * Parses and checks an envelope as {@link decode} does, without taking its
   * payload out: where the payload starts, and everything else decode returns.
   *
   * @throws CorruptValueError and ValueTooLargeError as {@link decode} does,
   *   except for a compressed payload that does not expand to its declared
   *   length (found only by {@link payload}).
   */
  layout(envelope: Uint8Array): EnvelopeLayout {
    checkHeader(envelope);
    const flags = envelope[FLAGS_OFFSET]!;
    if ((flags & ~KNOWN_FLAGS) !== 0) {
      throw new CorruptValueError(`envelope has unknown flags 0x${flags.toString(16).padStart(2, "0")}`);
    }
    const expiresAt = readExpiresAt(envelope);
    const declared = readUint32BE(envelope, ORIGINAL_LENGTH_OFFSET);
    const typeEnd = ENVELOPE_HEADER_BYTES + envelope[CONTENT_TYPE_LENGTH_OFFSET]!;
    if (typeEnd > envelope.byteLength) {
      throw new CorruptValueError(`envelope of ${envelope.byteLength} bytes is truncated inside its content type`);
    }
    const contentType = this.#decodeContentType(envelope, typeEnd);
    let payloadOffset = typeEnd;
    let freshUntil = 0;
    if ((flags & FLAG_FRESH_UNTIL) !== 0) {
      payloadOffset += FRESH_UNTIL_BYTES;
      if (payloadOffset > envelope.byteLength) throw new CorruptValueError("envelope is truncated inside its freshUntil");
      freshUntil = readFloat64BE(envelope, typeEnd);
      if (!Number.isSafeInteger(freshUntil) || freshUntil < 0) throw new CorruptValueError(`envelope has an invalid freshUntil (${freshUntil})`);
    }
    let tags: TagStamp | undefined;
    if ((flags & FLAG_TAGS) !== 0) {
      const section = readTagSection(envelope)!;
      tags = { epoch: section.epoch, tags: section.tags };
      payloadOffset += section.bytes;
    }
    const { maxValueBytes } = this.options;
    if (declared > maxValueBytes) {
      throw new ValueTooLargeError(`stored value of ${declared} bytes exceeds max-value-bytes (${maxValueBytes})`);
    }
    const compressed = (flags & FLAG_COMPRESSED) !== 0;
    if (!compressed && envelope.byteLength - payloadOffset !== declared) {
      throw new CorruptValueError(`envelope payload is ${envelope.byteLength - payloadOffset} bytes but declares ${declared}`);
    }
    return { contentType, contentTypeBytes: this.#lastTypeBytes, expiresAt, freshUntil, tags, compressed, payloadOffset, declared };
  }

  /**
   * The value of an envelope of this `layout`: a view into the envelope when
   * it is stored raw (treat it as read-only), else its decompressed bytes.
   *
   * @throws CorruptValueError for a compressed payload that does not expand to its declared length.
   */
  payload(envelope: Uint8Array, layout: EnvelopeLayout): Uint8Array {
    const payload = envelope.subarray(layout.payloadOffset);
    return layout.compressed ? this.#decompress(payload, layout.declared) : payload;
  }

  /** Reads only `expiresAt` (no decompression). @throws CorruptValueError */
  static expiresAt(envelope: Uint8Array): number {
    return readExpiresAt(envelope);
  }

  /** A copy with a new `expiresAt` and no grace period (see envelope.ts {@link withNewExpiry}). */
  static withExpiresAt(envelope: Uint8Array, expiresAt: number): Uint8Array {
    return withNewExpiry(envelope, expiresAt);
  }

  #count(bytesIn: number, bytesStored: number, compressed: number): void {
    this.#bytesIn += bytesIn;
    this.#bytesStored += bytesStored;
    this.#compressedCount += compressed;
  }

  /** The header template of a content type (see `headerTemplate`), its UTF-8 bytes checked against the 255-byte limit. */
  #headerOf(contentType: string): Uint8Array {
    if (contentType === this.#headerType) return this.#header;
    const bytes = Buffer.from(contentType, "utf8");
    if (bytes.byteLength > MAX_CONTENT_TYPE_BYTES) {
      throw new InvalidArgumentError(`content type is ${bytes.byteLength} UTF-8 bytes, over the limit of ${MAX_CONTENT_TYPE_BYTES}`);
    }
    if (bytes.toString("utf8") !== contentType) {
      throw new InvalidArgumentError("content type is not well-formed Unicode (lone surrogate)");
    }
    this.#headerType = contentType;
    this.#header = headerTemplate(bytes);
    return this.#header;
  }

  /** The content type of an envelope; `#lastTypeBytes` holds its UTF-8 afterwards (a copy, replaced and never changed in place). */
  #decodeContentType(envelope: Uint8Array, end: number): string {
    const start = ENVELOPE_HEADER_BYTES;
    if (sameBytes(envelope, start, end, this.#lastTypeBytes)) return this.#lastType;
    const bytes = envelope.subarray(start, end);
    let type: string;
    try {
      type = strictUtf8.decode(bytes);
    } catch (err) {
      throw new CorruptValueError("envelope content type is not valid UTF-8", { cause: err });
    }
    this.#lastTypeBytes = new Uint8Array(bytes); // a copy: the envelope may be reused
    this.#lastType = type;
    return type;
  }

  /**
   * Decompresses into a buffer of exactly the declared length (already checked
   * against maxValueBytes). zstd fails with "destination too small" rather than
   * write past it, so output is bounded whatever the frame header claims.
   */
  #decompress(payload: Uint8Array, declared: number): Uint8Array {
    if (payload.byteLength === 0) throw new CorruptValueError("compressed envelope has an empty payload");
    const out = Buffer.allocUnsafe(declared);
    let produced: number;
    try {
      produced = this.#dctx.decompress(out, payload);
    } catch (err) {
      throw this.#explainFailure(payload, declared, err);
    }
    if (produced !== declared) {
      throw new CorruptValueError(`compressed payload expands to ${produced} bytes but the envelope declares ${declared}`);
    }
    return out;
  }

  /** Chooses the error for a payload that failed to decompress into `declared` bytes. */
  #explainFailure(payload: Uint8Array, declared: number, cause: unknown): Error {
    const { maxValueBytes } = this.options;
    const actual = this.#measure(payload);
    if (actual !== undefined && actual > maxValueBytes) {
      return new ValueTooLargeError(`compressed value expands beyond max-value-bytes (${maxValueBytes})`, { cause });
    }
    if (actual !== undefined && actual > declared) {
      return new CorruptValueError(`compressed payload expands beyond the declared ${declared} bytes`, { cause });
    }
    const reason = cause instanceof Error ? cause.message : String(cause);
    return new CorruptValueError(`compressed payload does not decompress to the declared ${declared} bytes: ${reason}`, { cause });
  }

  /**
   * The decompressed size of `payload`, or more than maxValueBytes if it is at
   * least that big, or undefined if the payload is invalid. Uses the frame
   * header when it states a size over the limit; otherwise decompresses
   * through a fixed chunk, stopping as soon as maxValueBytes is passed.
   */
  #measure(payload: Uint8Array): number | undefined {
    const limit = this.options.maxValueBytes;
    let headerSize: number | null;
    try {
      headerSize = binding.getFrameContentSize(payload);
    } catch {
      return undefined;
    }
    if (headerSize !== null && headerSize > limit) return headerSize;

    const probe = (this.#probe ??= this.#createProbe());
    probe.reset(binding.ResetDirective.sessionOnly);
    const chunk = Buffer.allocUnsafe(Math.min(PROBE_CHUNK_BYTES, limit + 1));
    let input = payload;
    let total = 0;
    try {
      for (;;) {
        const [remaining, produced, consumed] = probe.decompressStream(chunk, input);
        total += produced;
        input = input.subarray(consumed);
        if (total > limit) return total;
        if (remaining === 0 && input.byteLength === 0) return total;
        if (produced === 0 && consumed === 0) return undefined; // truncated frame
      }
    } catch {
      return undefined;
    } finally {
      probe.reset(binding.ResetDirective.sessionOnly);
    }
  }

  #createProbe(): DCtx {
    const probe = new binding.DCtx();
    // Refuse frames whose window is larger than any legitimate value needs,
    // so the streaming context cannot be made to allocate a huge window.
    const windowLog = Math.ceil(Math.log2(Math.max(this.options.maxValueBytes, 1))) + 1;
    probe.setParameter(binding.DParameter.windowLogMax, Math.min(31, Math.max(10, windowLog)));
    return probe;
  }
}

/** Whether `bytes[start..end)` equals `expected` (a plain loop beats a native call for short runs). */
function sameBytes(bytes: Uint8Array, start: number, end: number, expected: Uint8Array): boolean {
  const length = expected.length;
  if (end - start !== length) return false;
  for (let i = 0; i < length; i++) if (bytes[start + i] !== expected[i]) return false;
  return true;
}

function readUint32BE(bytes: Uint8Array, offset: number): number {
  return bytes[offset]! * 0x100_0000 + ((bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!);
}

/**
 * The header of an envelope with this content type, with zero flags, expiry
 * and length: {@link writeHeader} copies it and patches what differs, which
 * costs less than writing each field through Buffer's checked writers.
 */
function headerTemplate(typeBytes: Uint8Array): Uint8Array {
  const header = new Uint8Array(ENVELOPE_HEADER_BYTES + typeBytes.byteLength);
  header[0] = ENVELOPE_VERSION;
  header[CONTENT_TYPE_LENGTH_OFFSET] = typeBytes.byteLength;
  header.set(typeBytes, ENVELOPE_HEADER_BYTES);
  return header;
}

function writeHeader(envelope: Uint8Array, flags: number, expiresAt: number, originalLength: number, template: Uint8Array, freshUntil: number): void {
  envelope.set(template);
  envelope[FLAGS_OFFSET] = flags;
  if (expiresAt !== 0) writeFloat64BE(envelope, EXPIRES_AT_OFFSET, expiresAt);
  envelope[ORIGINAL_LENGTH_OFFSET] = originalLength >>> 24;
  envelope[ORIGINAL_LENGTH_OFFSET + 1] = (originalLength >>> 16) & 0xff;
  envelope[ORIGINAL_LENGTH_OFFSET + 2] = (originalLength >>> 8) & 0xff;
  envelope[ORIGINAL_LENGTH_OFFSET + 3] = originalLength & 0xff;
  if ((flags & FLAG_FRESH_UNTIL) !== 0) writeFloat64BE(envelope, template.length, freshUntil);
}
