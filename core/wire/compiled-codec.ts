import type { DescField, DescMessage, MessageShape } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import { asciiText } from "./ascii-text.js";
import { utf8Length, writeText } from "./text-write.js";
import { generateReader, type ReadFunction, type ReaderHelpers } from "./generated-reader.js";
import { generateWriter, type GeneratedWriter, type WriterHelpers } from "./generated-writer.js";
import { bigVarintSize, varintSize, writeBigVarint, writeVarint } from "./varint.js";
import { strictUtf8 } from "../utf8.js";

/**
 * A binary codec derived from one message descriptor at start-up, for the
 * few messages on the hot paths. It supports the field shapes those messages
 * use (proto3 implicit-presence bool, string, bytes, int32, uint32, int64,
 * uint64 and enums; repeated strings; singular and repeated messages; oneof
 * groups of message fields) and gives up on anything else, so callers fall
 * back to protobuf-es: a message with unknown fields, a value of the wrong
 * type, malformed or non-canonical input. Whatever it returns is what protobuf-es would return, down to the
 * order of the properties (checked by a property test on random messages of
 * every hot schema, and on random wire forms of them). Writers and readers
 * are generated per message type (generated-writer.ts, generated-reader.ts).
 */
export interface CompiledCodec<D extends DescMessage = DescMessage> {
  readonly schema: D;
  /**
   * The binary form of `message` (a message or its init shape), or undefined
   * when protobuf-es must do it; written into `allocate(size)` when given.
   */
  encode(message: object, allocate?: (size: number) => Buffer): Uint8Array | undefined;
  /** The message in `bytes`, or undefined when protobuf-es must decode it (and give the canonical result or error). */
  decode(bytes: Uint8Array): MessageShape<D> | undefined;
}

/** A field shape the compiled codecs write (a oneof member: "member"). */
export type WireKind = "bool" | "string" | "bytes" | "int32" | "uint32" | "int64" | "uint64" | "strings" | "message" | "messages" | "member";

/**
 * One field. A oneof member ("member", a message field in a oneof group) is
 * stored as protobuf-es stores it: `name` is the group's property, holding
 * `{ case: member, value }`, or `{ case: undefined }` when no member is set.
 */
interface FieldPlan {
  readonly name: string;
  readonly kind: WireKind;
  readonly member?: string;
  readonly tag: number;
  readonly tagSize: number;
  sub: Compiled | undefined;
}

/** Thrown inside a pass to hand the whole message to protobuf-es. */
const GIVE_UP = Symbol("give up");

const EMPTY_BYTES = new Uint8Array(0);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function kindOf(field: DescField): WireKind | undefined {
  switch (field.fieldKind) {
    case "enum":
      return field.presence === 2 ? "int32" : undefined;
    case "scalar": {
      if (field.presence !== 2) return undefined;
      switch (field.scalar) {
        case ScalarType.BOOL:
          return "bool";
        case ScalarType.STRING:
          return "string";
        case ScalarType.BYTES:
          return "bytes";
        case ScalarType.INT32:
          return "int32";
        case ScalarType.UINT32:
          return "uint32";
        case ScalarType.INT64:
          return field.longAsString ? undefined : "int64";
        case ScalarType.UINT64:
          return field.longAsString ? undefined : "uint64";
        default:
          return undefined;
      }
    }
    case "list":
      if (field.listKind === "scalar" && field.scalar === ScalarType.STRING) return "strings";
      if (field.listKind === "message" && !field.delimitedEncoding) return "messages";
      return undefined;
    case "message":
      if (field.delimitedEncoding) return undefined;
      return field.oneof ? "member" : "message";
    default:
      return undefined;
  }
}

/**
 * How the compiled codecs write `field`: its kind and its tag (number and
 * wire type), or undefined for a shape they leave to protobuf-es. Enums are
 * written as int32.
 */
export function wireFieldOf(field: DescField): { readonly kind: WireKind; readonly tag: number } | undefined {
  const kind = kindOf(field);
  if (kind === undefined) return undefined;
  const wireType = kind === "bool" || kind === "int32" || kind === "uint32" || kind === "int64" || kind === "uint64" ? 0 : 2;
  return { kind, tag: (field.number << 3) | wireType };
}

const hasSub = (p: FieldPlan): boolean => p.kind === "message" || p.kind === "messages" || p.kind === "member";

class Compiled {
  readonly typeName: string;
  /** In declaration order (a oneof's members where the group is), the order of protobuf-es's properties. */
  readonly declared: FieldPlan[];
  /** In tag order, the order they are written. */
  readonly plans: FieldPlan[];

  constructor(schema: DescMessage, declared: FieldPlan[]) {
    this.typeName = schema.typeName;
    this.declared = declared;
    this.plans = [...declared].sort((a, b) => a.tag - b.tag);
  }

  #writer: GeneratedWriter | undefined;
  #reader: ReadFunction | undefined;

  /** The generated size and write functions of this type, made on first use (its nested types are linked by then). */
  get #generated(): GeneratedWriter {
    return (this.#writer ??= generateWriter(
      this.plans,
      this.plans.filter(hasSub).map((p) => p.sub!),
      WRITER_HELPERS,
    ));
  }

  /** Size of `message`'s body; pushes string and sub-message sizes onto `sizes` in write order. */
  size(message: Record<string, unknown>, sizes: number[]): number {
    return this.#generated.size(message, sizes);
  }

  /** Writes `message`'s body at `pos`, reading the sizes {@link size} pushed from `cursor.at`; returns the position after it. */
  write(message: Record<string, unknown>, buf: Buffer, pos: number, sizes: number[], cursor: { at: number }): number {
    return this.#generated.write(message, buf, pos, sizes, cursor);
  }

  /**
   * The generated read function of this type, made on first use. It returns
   * the message in `buf[start, end)` (`input` is the same bytes as given: its
   * subarrays are the bytes fields, as protobuf-es returns them) and throws
   * GIVE_UP on an unknown field number or wire type, a tag over two bytes, a
   * varint over 7 bytes or a length over 4, an int32 or uint32 out of range
   * (negative int32s included), a bool over 1, a second occurrence of a
   * singular message field or of the oneof member already set (protobuf-es
   * merges them; another member replaces it, as there), a length past the
   * end, invalid UTF-8, or a body that does not end exactly at `end`.
   */
  reader(): ReadFunction {
    return (this.#reader ??= generateReader(
      this.typeName,
      this.declared,
      this.declared.filter(hasSub).map((p) => p.sub!),
      READER_HELPERS,
    ));
  }
}

/** An int64/uint64 value as a number when it is a safe non-negative integer, else as a bigint. */
function longOf(value: unknown, kind: "int64" | "uint64"): number | bigint {
  let n: bigint;
  if (typeof value === "bigint") {
    if (value >= 0n && value <= MAX_SAFE) return Number(value);
    n = value;
  } else if (typeof value === "number" && Number.isSafeInteger(value)) {
    if (value >= 0) return value;
    n = BigInt(value);
  } else throw GIVE_UP;
  if (kind === "int64" ? BigInt.asIntN(64, n) !== n : BigInt.asUintN(64, n) !== n) throw GIVE_UP;
  return n;
}

/** The UTF-8 text in `buf[start, end)`; GIVE_UP when it is not valid UTF-8. */
function textOf(buf: Buffer, start: number, end: number): string {
  const ascii = asciiText(buf, start, end);
  if (ascii !== undefined) return ascii;
  try {
    return strictUtf8.decode(buf.subarray(start, end));
  } catch {
    throw GIVE_UP;
  }
}

const WRITER_HELPERS: WriterHelpers = { GIVE_UP, utf8Length, varintSize, bigVarintSize, writeVarint, writeBigVarint, writeText, longOf };
const READER_HELPERS: ReaderHelpers = { GIVE_UP, EMPTY_BYTES, textOf };

const compiled = new WeakMap<DescMessage, Compiled | null>();

function compile(schema: DescMessage, compiling: Map<DescMessage, Compiled>): Compiled | undefined {
  const done = compiled.get(schema);
  if (done !== undefined) return done ?? undefined;
  const pending = compiling.get(schema);
  if (pending) return pending;
  const fields = schema.members.flatMap((m) => (m.kind === "oneof" ? m.fields : [m]));
  const plans: FieldPlan[] = [];
  for (const field of fields) {
    const wire = wireFieldOf(field);
    if (wire === undefined || (field.oneof !== undefined && wire.kind !== "member") || field.number > 0x7ff) return remember(schema, undefined);
    const { kind, tag } = wire;
    const plan: FieldPlan = field.oneof ? { name: field.oneof.localName, kind, member: field.localName, tag, tagSize: varintSize(tag), sub: undefined } : { name: field.localName, kind, tag, tagSize: varintSize(tag), sub: undefined };
    plans.push(plan);
  }
  const result = new Compiled(schema, plans);
  compiling.set(schema, result);
  for (const [i, field] of fields.entries()) {
    if (field.fieldKind !== "message" && !(field.fieldKind === "list" && field.listKind === "message")) continue;
    const sub = compile(field.message, compiling);
    if (!sub) return remember(schema, undefined);
    plans[i]!.sub = sub;
  }
  return remember(schema, result);
}

function remember(schema: DescMessage, result: Compiled | undefined): Compiled | undefined {
  compiled.set(schema, result ?? null);
  return result;
}

const scratch: number[] = [];
const cursor = { at: 0 };

/** The compiled codec of `schema`, or undefined when its fields are outside what it supports. */
export function compiledCodec<D extends DescMessage>(schema: D): CompiledCodec<D> | undefined {
  const codec = compile(schema, new Map());
  if (!codec) return undefined;
  return {
    schema,
    encode(message, allocate) {
      scratch.length = 0;
      try {
        const size = codec.size(message as Record<string, unknown>, scratch);
        const buf = allocate === undefined ? Buffer.allocUnsafe(size) : allocate(size);
        cursor.at = 0;
        // Every byte must be written: a reused buffer would otherwise send what an earlier message left there.
        if (codec.write(message as Record<string, unknown>, buf, 0, scratch, cursor) !== size) throw GIVE_UP;
        return buf;
      } catch (err) {
        if (err === GIVE_UP) return undefined;
        throw err;
      }
    },
    decode(bytes) {
      const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      try {
        return codec.reader()(bytes, buf, 0, buf.byteLength) as MessageShape<D>;
      } catch (err) {
        if (err === GIVE_UP || err instanceof RangeError) return undefined;
        throw err;
      }
    },
  };
}
