/**
 * Straight-line `size` and `write` functions for one message type, generated
 * from its field plans (see compiled-codec.ts): each field is read by its
 * literal name, so every property access stays monomorphic, where a loop over
 * the plans would read `message[plan.name]` through one megamorphic site.
 * They do what `Compiled.size`/`Compiled.write` describe, field for field.
 * A oneof group is checked once, before the fields: it must be absent,
 * `{ case: undefined }` or `{ case: <a member>, value: <an object> }`; each
 * member is then written in its field's place, when it is the case.
 */

/** What the generated code calls. */
export interface WriterHelpers {
  readonly GIVE_UP: symbol;
  utf8Length(text: string): number;
  varintSize(n: number): number;
  bigVarintSize(n: bigint): number;
  writeVarint(buf: Uint8Array, pos: number, n: number): number;
  writeBigVarint(buf: Uint8Array, pos: number, n: bigint): number;
  writeText(buf: Buffer, pos: number, text: string, n: number): number;
  longOf(value: unknown, kind: "int64" | "uint64"): number | bigint;
}

/** The field plan the generator needs. */
export interface WriterField {
  /** The property: for a oneof member, its group's. */
  readonly name: string;
  readonly kind: "bool" | "string" | "bytes" | "int32" | "uint32" | "int64" | "uint64" | "strings" | "message" | "messages" | "member";
  /** A oneof member's own name, its `case`. */
  readonly member?: string;
  readonly tag: number;
  readonly tagSize: number;
}

/** The nested message types a generated writer calls, by index. */
export interface SubWriter {
  size(message: Record<string, unknown>, sizes: number[]): number;
  write(message: Record<string, unknown>, buf: Buffer, pos: number, sizes: number[], cursor: { at: number }): number;
}

export interface GeneratedWriter {
  size(message: Record<string, unknown>, sizes: number[]): number;
  write(message: Record<string, unknown>, buf: Buffer, pos: number, sizes: number[], cursor: { at: number }): number;
}

function sizeOf(field: WriterField, sub: number): string {
  const v = `m[${JSON.stringify(field.name)}]`;
  const t = field.tagSize;
  switch (field.kind) {
    case "bool":
      return `v = ${v}; if (v !== undefined) { if (typeof v !== "boolean") throw H.GIVE_UP; if (v) t += ${t + 1}; }`;
    case "string":
      return `v = ${v}; if (v !== undefined) { if (typeof v !== "string") throw H.GIVE_UP; if (v.length !== 0) { n = H.utf8Length(v); sizes.push(n); t += ${t} + H.varintSize(n) + n; } }`;
    case "bytes":
      return `v = ${v}; if (v !== undefined) { if (!(v instanceof Uint8Array)) throw H.GIVE_UP; n = v.byteLength; if (n > 0) t += ${t} + H.varintSize(n) + n; }`;
    case "int32":
      return `v = ${v}; if (v !== undefined) { if (typeof v !== "number" || !Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw H.GIVE_UP; if (v !== 0) t += ${t} + (v < 0 ? 10 : H.varintSize(v)); }`;
    case "uint32":
      return `v = ${v}; if (v !== undefined) { if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= 0x100000000) throw H.GIVE_UP; if (v !== 0) t += ${t} + H.varintSize(v); }`;
    case "int64":
    case "uint64":
      return `v = ${v}; if (v !== undefined) { n = H.longOf(v, "${field.kind}"); if (n !== 0 && n !== 0n) t += ${t} + (typeof n === "number" ? H.varintSize(n) : H.bigVarintSize(n)); }`;
    case "strings":
      return `v = ${v}; if (v !== undefined) { if (!Array.isArray(v)) throw H.GIVE_UP; for (let i = 0; i < v.length; i++) { const s = v[i]; if (typeof s !== "string") throw H.GIVE_UP; n = H.utf8Length(s); sizes.push(n); t += ${t} + H.varintSize(n) + n; } }`;
    case "message":
      return `v = ${v}; if (v !== undefined) { if (typeof v !== "object" || v === null) throw H.GIVE_UP; const at = sizes.push(0) - 1; n = subs[${sub}].size(v, sizes); sizes[at] = n; t += ${t} + H.varintSize(n) + n; }`;
    case "member":
      return `v = ${v}; if (v !== undefined && v.case === ${JSON.stringify(field.member)}) { v = v.value; const at = sizes.push(0) - 1; n = subs[${sub}].size(v, sizes); sizes[at] = n; t += ${t} + H.varintSize(n) + n; }`;
    case "messages":
      return `v = ${v}; if (v !== undefined) { if (!Array.isArray(v)) throw H.GIVE_UP; const sub = subs[${sub}]; for (let i = 0; i < v.length; i++) { const e = v[i]; if (typeof e !== "object" || e === null) throw H.GIVE_UP; const at = sizes.push(0) - 1; n = sub.size(e, sizes); sizes[at] = n; t += ${t} + H.varintSize(n) + n; } }`;
  }
}

function writeOf(field: WriterField, sub: number): string {
  const v = `m[${JSON.stringify(field.name)}]`;
  const tag = `p = H.writeVarint(buf, p, ${field.tag});`;
  switch (field.kind) {
    case "bool":
      return `if (${v}) { ${tag} buf[p++] = 1; }`;
    case "string":
      return `v = ${v}; if (v !== undefined && v.length !== 0) { n = sizes[cursor.at++]; ${tag} p = H.writeText(buf, H.writeVarint(buf, p, n), v, n); }`;
    case "bytes":
      return `v = ${v}; if (v !== undefined && v.byteLength !== 0) { ${tag} p = H.writeVarint(buf, p, v.byteLength); buf.set(v, p); p += v.byteLength; }`;
    case "int32":
    case "uint32":
      return `v = ${v}; if (v !== undefined && v !== 0) { ${tag} p = v < 0 ? H.writeBigVarint(buf, p, BigInt(v)) : H.writeVarint(buf, p, v); }`;
    case "int64":
    case "uint64":
      return `v = ${v}; if (v !== undefined) { n = H.longOf(v, "${field.kind}"); if (n !== 0 && n !== 0n) { ${tag} p = typeof n === "number" ? H.writeVarint(buf, p, n) : H.writeBigVarint(buf, p, n); } }`;
    case "strings":
      return `v = ${v}; if (v !== undefined) for (let i = 0; i < v.length; i++) { n = sizes[cursor.at++]; ${tag} p = H.writeText(buf, H.writeVarint(buf, p, n), v[i], n); }`;
    case "message":
      return `v = ${v}; if (v !== undefined) { n = sizes[cursor.at++]; ${tag} p = subs[${sub}].write(v, buf, H.writeVarint(buf, p, n), sizes, cursor); }`;
    case "member":
      return `v = ${v}; if (v !== undefined && v.case === ${JSON.stringify(field.member)}) { n = sizes[cursor.at++]; ${tag} p = subs[${sub}].write(v.value, buf, H.writeVarint(buf, p, n), sizes, cursor); }`;
    case "messages":
      return `v = ${v}; if (v !== undefined) { const sub = subs[${sub}]; for (let i = 0; i < v.length; i++) { n = sizes[cursor.at++]; ${tag} p = sub.write(v[i], buf, H.writeVarint(buf, p, n), sizes, cursor); } }`;
  }
}

/** Checks oneof group `name` with these `members`: absent, no case, or a member's case with an object value. */
function checkOneof(name: string, members: readonly string[]): string {
  const known = members.map((m) => `c !== ${JSON.stringify(m)}`).join(" && ");
  return `v = m[${JSON.stringify(name)}]; if (v !== undefined) { if (typeof v !== "object" || v === null) throw H.GIVE_UP; c = v.case; if (c !== undefined) { if (${known}) throw H.GIVE_UP; v = v.value; if (typeof v !== "object" || v === null) throw H.GIVE_UP; } }`;
}

/** Generates the writer of one message type; `subs[i]` is the writer of the i-th message-typed field in `fields`. */
export function generateWriter(fields: readonly WriterField[], subs: readonly SubWriter[], helpers: WriterHelpers): GeneratedWriter {
  let sub = 0;
  const subIndex = fields.map((f) => (f.kind === "message" || f.kind === "messages" || f.kind === "member" ? sub++ : -1));
  const groups = new Map<string, string[]>();
  for (const f of fields) if (f.kind === "member") groups.set(f.name, [...(groups.get(f.name) ?? []), f.member!]);
  const size = [
    "let t = 0, v, n, c;",
    "if (m.$unknown !== undefined && m.$unknown.length > 0) throw H.GIVE_UP;",
    ...[...groups].map(([name, members]) => checkOneof(name, members)),
    ...fields.map((f, i) => sizeOf(f, subIndex[i]!)),
    "return t;",
  ].join("\n");
  const write = ["let p = pos, v, n;", ...fields.map((f, i) => writeOf(f, subIndex[i]!)), "return p;"].join("\n");
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from descriptor field names, each quoted with JSON.stringify
  const make = new Function("H", "subs", `return { size(m, sizes) {\n${size}\n}, write(m, buf, pos, sizes, cursor) {\n${write}\n} };`) as (h: WriterHelpers, s: readonly SubWriter[]) => GeneratedWriter;
  return make(helpers, subs);
}
