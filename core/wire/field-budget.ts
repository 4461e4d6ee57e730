import { ScalarType, type DescMessage } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/**
 * How the decoder (protobuf-es; the compiled codec falls back to it) reads
 * a declared field: by its declared type, whatever wire type the field came
 * with. A scalar sent length-delimited is read as its scalar, so the bytes
 * that followed as "its payload" are read as fields of the message: the scan
 * must read them the same way, not skip them.
 */
type FieldPlan =
  | { readonly kind: "message"; readonly message: DescMessage; readonly delimited: boolean }
  | { readonly kind: "scalar"; readonly scalar: ScalarType; readonly list: boolean }
  | { readonly kind: "map" };

const plans = new WeakMap<DescMessage, Map<number, FieldPlan>>();

function plansOf(schema: DescMessage): Map<number, FieldPlan> {
  let byNumber = plans.get(schema);
  if (!byNumber) {
    byNumber = new Map();
    for (const field of schema.fields) {
      let plan: FieldPlan;
      if (field.fieldKind === "message") plan = { kind: "message", message: field.message, delimited: field.delimitedEncoding };
      else if (field.fieldKind === "list" && field.listKind === "message") plan = { kind: "message", message: field.message, delimited: field.delimitedEncoding };
      else if (field.fieldKind === "list") plan = { kind: "scalar", scalar: field.listKind === "scalar" ? field.scalar : ScalarType.INT32, list: true };
      else if (field.fieldKind === "scalar") plan = { kind: "scalar", scalar: field.scalar, list: false };
      else if (field.fieldKind === "enum") plan = { kind: "scalar", scalar: ScalarType.INT32, list: false };
      else plan = { kind: "map" };
      byNumber.set(field.number, plan);
    }
    plans.set(schema, byNumber);
  }
  return byNumber;
}

/**
 * Whether the encoded message `bytes` of type `schema` holds more than
 * `budget` fields, counting them as the decoder will read them: every field
 * of every nested message it declares (each key of a batch, each entry and
 * each field of it, each tag), each element of a packed list, each unknown
 * field and each field inside an unknown group. Reads no more than
 * `budget` + 1 field headers (and the ends of the groups among them),
 * allocates nothing, and answers false for malformed bytes once it reaches
 * where the decoder would stop on them (which then says what is wrong with
 * them): the scan walks the bytes exactly as the decoder does, so that the
 * fields it counts are the ones the decoder would read, and its position
 * never parts from the decoder's. A decoder's work and memory grow with the number
 * of fields, not only with the bytes: a 16 MiB message can hold 8 million
 * empty batch entries.
 */
export function exceedsFieldBudget(schema: DescMessage, bytes: Uint8Array, budget: number): boolean {
  // Every field counted takes two bytes of its own at least (its tag, and a value, a length or a group's end): most requests are too short to need a scan.
  if (bytes.length < 2 * (budget + 1)) return false;
  const left = { fields: budget };
  try {
    const reader = new BinaryReader(bytes);
    return !withinBudget(schema, reader, reader.len, left);
  } catch {
    return false;
  }
}

function withinBudget(schema: DescMessage, reader: BinaryReader, end: number, left: { fields: number }): boolean {
  const byNumber = plansOf(schema);
  while (reader.pos < end) {
    if (--left.fields < 0) return false;
    const [number, wireType] = reader.tag();
    const plan = byNumber.get(number);
    if (plan === undefined) {
      if (wireType === WireType.StartGroup) {
        if (!groupWithinBudget(reader, number, left)) return false;
      } else reader.skip(wireType, number);
    } else if (plan.kind === "message") {
      if (plan.delimited) {
        if (!groupWithinBudget(reader, number, left)) return false;
        continue;
      }
      // As the decoder does: read the nested message's fields while before its stated end, even past the buffer's (it fails
      // only when it runs out of bytes), and go on from wherever its last field ended, even past its stated end.
      const stop = reader.uint32() + reader.pos;
      if (!withinBudget(plan.message, reader, stop, left)) return false;
    } else if (plan.kind === "map") {
      reader.skip(WireType.LengthDelimited, number);
    } else if (plan.list && wireType === WireType.LengthDelimited && plan.scalar !== ScalarType.STRING && plan.scalar !== ScalarType.BYTES) {
      const stop = reader.uint32() + reader.pos;
      while (reader.pos < stop) {
        if (--left.fields < 0) return false;
        skipScalar(reader, plan.scalar, number);
      }
    } else skipScalar(reader, plan.scalar, number);
  }
  return true;
}

/** Moves past one scalar as the decoder reads it: by its declared type. */
function skipScalar(reader: BinaryReader, scalar: ScalarType, number: number): void {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      reader.skip(WireType.LengthDelimited, number);
      break;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      reader.skip(WireType.Bit64, number);
      break;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      reader.skip(WireType.Bit32, number);
      break;
    default:
      reader.skip(WireType.Varint, number);
  }
}

/** Counts the fields of a group (an unknown field no request declares) and of the groups inside it, without recursion; throws on a mismatched end. */
function groupWithinBudget(reader: BinaryReader, number: number, left: { fields: number }): boolean {
  const open = [number];
  while (open.length > 0) {
    const [inner, wireType] = reader.tag();
    if (wireType === WireType.EndGroup) {
      if (inner !== open.pop()) throw new RangeError("mismatched end group");
      continue;
    }
    if (--left.fields < 0) return false;
    if (wireType === WireType.StartGroup) open.push(inner);
    else reader.skip(wireType, inner);
  }
  return true;
}
