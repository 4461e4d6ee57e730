/**
 * A straight-line `read` function for one message type, generated from its
 * field plans (see compiled-codec.ts): the message is made by one constructor
 * that sets every field in protobuf-es's order (one hidden class per type;
 * its prototype is Object.prototype, as a literal's), and each
 * tag is one `case` of a switch with its varint inlined, where a loop over
 * the plans would spread a template, look the plan up and store through
 * megamorphic `message[plan.name]` sites. It accepts exactly what
 * `Compiled.reader` describes and throws `GIVE_UP` on anything else.
 *
 * A oneof group is one property, `{ case: undefined }` (made by `N`) until
 * one of its members is read, then `{ case, value }` (made by `S`), as in
 * protobuf-es.
 *
 * Not an object literal: V8 tracks a literal's allocation site, and once
 * most of its objects outlive a scavenge (a client holding a response's
 * 1,000 entries while it yields them one by one) it allocates every later
 * one straight in the old generation: 3-4 mark-compacts per 100k-key
 * streamGet in the client, where there were none; objects made by `new` stay
 * young.
 */

/** What the generated code calls. */
export interface ReaderHelpers {
  readonly GIVE_UP: symbol;
  readonly EMPTY_BYTES: Uint8Array;
  textOf(buf: Buffer, start: number, end: number): string;
}

/** The field plan the generator needs. */
export interface ReaderField {
  /** The property: for a oneof member, its group's. */
  readonly name: string;
  readonly kind: "bool" | "string" | "bytes" | "int32" | "uint32" | "int64" | "uint64" | "strings" | "message" | "messages" | "member";
  /** A oneof member's own name, its `case`. */
  readonly member?: string;
  readonly tag: number;
}

/** Reads the message in `buf[start, end)`; `input` is the same bytes as given (bytes fields are its subarrays). */
export type ReadFunction = (input: Uint8Array, buf: Buffer, start: number, end: number) => Record<string, unknown>;

/** A nested message type: its read function, made when first asked for. */
export interface SubReader {
  reader(): ReadFunction;
}

const ZERO: Record<Exclude<ReaderField["kind"], "message" | "member">, string> = {
  bool: "false",
  string: '""',
  bytes: "H.EMPTY_BYTES",
  int32: "0",
  uint32: "0",
  int64: "0n",
  uint64: "0n",
  strings: "[]",
  messages: "[]",
};

/** A varint of at most `max` bytes into `v` (uses `b`, `s`, `c`); the value stays below 2^(7*max), exact as a number. */
function varint(v: string, max: number): string {
  return `if (p >= end) throw G; ${v} = buf[p++]; if (${v} > 0x7f) { ${v} &= 0x7f; s = 0x80; c = 1; do { if (p >= end || ++c > ${max}) throw G; b = buf[p++]; ${v} += (b & 0x7f) * s; s *= 0x80; } while (b > 0x7f); }`;
}

const LENGTH = `${varint("n", 4)} stop = p + n; if (stop > end) throw G;`;

function caseOf(field: ReaderField, sub: number): string {
  const f = `m[${JSON.stringify(field.name)}]`;
  const call = `(r${sub} === undefined ? (r${sub} = subs[${sub}].reader()) : r${sub})(input, buf, p, stop)`;
  let body: string;
  switch (field.kind) {
    case "bool":
      body = `${varint("v", 7)} if (v > 1) throw G; ${f} = v === 1;`;
      break;
    case "int32":
      body = `${varint("v", 7)} if (v > 0x7fffffff) throw G; ${f} = v;`;
      break;
    case "uint32":
      body = `${varint("v", 7)} if (v > 0xffffffff) throw G; ${f} = v;`;
      break;
    case "int64":
    case "uint64":
      body = `${varint("v", 7)} ${f} = v === 0 ? 0n : BigInt(v);`;
      break;
    case "string":
      body = `${LENGTH} ${f} = H.textOf(buf, p, stop); p = stop;`;
      break;
    case "strings":
      body = `${LENGTH} ${f}.push(H.textOf(buf, p, stop)); p = stop;`;
      break;
    case "bytes":
      body = `${LENGTH} ${f} = input.subarray(p, stop); p = stop;`;
      break;
    case "message":
      body = `${LENGTH} if (${f} !== undefined) throw G; ${f} = ${call}; p = stop;`;
      break;
    case "messages":
      body = `${LENGTH} ${f}.push(${call}); p = stop;`;
      break;
    case "member": {
      const c = JSON.stringify(field.member);
      body = `${LENGTH} if (${f}.case === ${c}) throw G; ${f} = new S(${c}, ${call}); p = stop;`;
      break;
    }
  }
  return `case ${field.tag}: { ${body} break; }`;
}

/**
 * Generates the reader of one message type. `declared` are its fields in
 * declaration order (the order of protobuf-es's properties; singular message
 * fields stay absent until read, as in protobuf-es); `subs[i]` is the reader
 * of the i-th message-typed field in `declared`.
 */
export function generateReader(typeName: string, declared: readonly ReaderField[], subs: readonly SubReader[], helpers: ReaderHelpers): ReadFunction {
  let sub = 0;
  const subIndex = declared.map((f) => (f.kind === "message" || f.kind === "messages" || f.kind === "member" ? sub++ : -1));
  const fields = [`this.$typeName = ${JSON.stringify(typeName)};`];
  const groups = new Set<string>();
  for (const f of declared) {
    if (f.kind === "message") continue;
    if (f.kind === "member") {
      if (!groups.has(f.name)) fields.push(`this[${JSON.stringify(f.name)}] = new N();`);
      groups.add(f.name);
    } else fields.push(`this[${JSON.stringify(f.name)}] = ${ZERO[f.kind]};`);
  }
  const body = [
    "const m = new M();",
    "let p = start, t, v, n, b, s, c, stop;",
    "while (p < end) {",
    "t = buf[p++];",
    "if (t > 0x7f) { b = buf[p++]; if (b > 0x7f || p > end) throw G; t = (t & 0x7f) | (b << 7); }",
    "switch (t) {",
    ...declared.map((f, i) => caseOf(f, subIndex[i]!)),
    "default: throw G;",
    "}",
    "}",
    "if (p !== end) throw G;",
    "return m;",
  ].join("\n");
  const lazy = subIndex.filter((i) => i >= 0).map((i) => `let r${i};`).join(" ");
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from descriptor field names, each quoted with JSON.stringify
  const make = new Function("H", "subs", `const G = H.GIVE_UP; ${lazy}\nfunction M() { ${fields.join(" ")} }\nfunction N() { this.case = undefined; }\nfunction S(c, v) { this.case = c; this.value = v; }\nM.prototype = N.prototype = S.prototype = Object.prototype;\nreturn function read(input, buf, start, end) {\n${body}\n};`) as (h: ReaderHelpers, s: readonly SubReader[]) => ReadFunction;
  return make(helpers, subs);
}
