import type { DescMessage } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** The message type of each field of `schema` that holds messages (singular, repeated or in a oneof), by field number. */
const subMessages = new WeakMap<DescMessage, Map<number, DescMessage>>();

function messageFieldsOf(schema: DescMessage): Map<number, DescMessage> {
  let fields = subMessages.get(schema);
  if (!fields) {
    fields = new Map();
    for (const field of schema.fields) {
      if (field.fieldKind === "message") fields.set(field.number, field.message);
      else if (field.fieldKind === "list" && field.listKind === "message") fields.set(field.number, field.message);
    }
    subMessages.set(schema, fields);
  }
  return fields;
}

/**
 * Whether the encoded message `bytes` of type `schema` holds more than
 * `budget` fields, counting every field of every nested message it declares
 * (each key of a batch, each entry and each field of it, each tag, each
 * unknown field, each field inside an unknown group). Reads no more than
 * `budget` + 1 field headers (and the ends of the groups among them), allocates
 * nothing, and answers false for malformed bytes (the decoder says what is
 * wrong with them). A decoder's work and memory grow with the number of
 * fields, not only with the bytes: a 16 MiB message can hold 8 million
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
  const nested = messageFieldsOf(schema);
  while (reader.pos < end) {
    if (--left.fields < 0) return false;
    const [number, wireType] = reader.tag();
    if (wireType === WireType.StartGroup) {
      if (!groupWithinBudget(reader, number, left)) return false;
      continue;
    }
    const sub = wireType === WireType.LengthDelimited ? nested.get(number) : undefined;
    if (sub === undefined) {
      reader.skip(wireType, number);
      continue;
    }
    const length = reader.uint32();
    const stop = reader.pos + length;
    if (stop > end) throw new RangeError("truncated");
    if (!withinBudget(sub, reader, stop, left)) return false;
    reader.pos = stop;
  }
  return true;
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
