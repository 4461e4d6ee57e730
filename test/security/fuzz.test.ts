import { create, fromBinary, ScalarType, toBinary, type DescField, type DescMessage, type DescMethod } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { Client, credentials, Metadata, status, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compress } from "zstd-napi";
import { startServerChild, type ServerChild } from "../helpers/server-child.js";
import { METHOD_POLICIES, type CacheMethod } from "../../core/method-policy.js";
import { ENVELOPE_HEADER_BYTES, ENVELOPE_VERSION, FLAG_COMPRESSED } from "../../core/codec.js";
import { CacheService, LeaseSessionRequestSchema, LeaseSessionResponseSchema } from "../../gen/tiercache/v1/cache_pb.js";
import { LmdbTier } from "../../server/tiers/lmdb-tier.js";
import { tempDir } from "../helpers/test-server.js";

// The server under fuzz runs in a child process (so that a crash is seen, and its memory can be measured
// after a forced GC), built from dist/ by the test suite's global setup. Small limits keep the run fast.
const MAX_KEY = 256;
const MAX_VALUE = 16 * 1024;
const MAX_MESSAGE = 64 * 1024;
const MAX_BATCH = 16;
const FUZZ_TOKEN = "fuzz-token-A-0123456789abcdef"; // every right, on namespace fuzz-a only
const FUZZ_NAMESPACE = "fuzz-a";
const ADMIN_TOKEN = "admin-token-0123456789abcdef"; // every right everywhere; never used by the fuzzer
const VICTIM = "victim";
const RUNS = Number(process.env.TIERCACHE_FUZZ_RUNS ?? 900);
const RSS_BOUND = 64 * 1024 ** 2;
/** Replays a failure that fast-check reported: TIERCACHE_FUZZ_SEED and TIERCACHE_FUZZ_PATH are its `seed` and `path`. */
const REPLAY = {
  ...(process.env.TIERCACHE_FUZZ_SEED !== undefined && { seed: Number(process.env.TIERCACHE_FUZZ_SEED) }),
  ...(process.env.TIERCACHE_FUZZ_PATH !== undefined && { path: process.env.TIERCACHE_FUZZ_PATH }),
};

/** Statuses any answer may have; INTERNAL and UNKNOWN never. */
const ALLOWED = new Set([status.OK, status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED, status.UNAUTHENTICATED, status.PERMISSION_DENIED, status.NOT_FOUND]);
/** Calls that may legitimately wait (a held lease, an open event stream): the fuzzer gives them a short deadline. */
const WAITING = new Set(["Watch", "GetOrLease", "LeaseSession"]);
/** The deadline of those calls, in ms. */
const WAITING_DEADLINE_MS = 500;
/** Deadline of every other call, in ms: the server answers each in a few ms. */
const CALL_DEADLINE_MS = 5000;
/**
 * A deadline is excused only when this test was awake for less than this
 * during the call: a prompt answer, which takes milliseconds, may then have
 * gone unread (see `excusable`).
 */
const AWAKE_MS = 200;
/** Nor is it when the server stood still more than this longer than this test did (see `excusable`). */
const SERVER_STOP_SLACK_MS = 1000;

async function startFuzzServer(dataDir: string): Promise<ServerChild> {
  const tokens = [
    { token: FUZZ_TOKEN, namespaces: [FUZZ_NAMESPACE], rights: ["read", "write", "admin"] },
    { token: ADMIN_TOKEN, namespaces: ["*"], rights: ["read", "write", "admin"] },
  ];
  const args = ["--data-dir", dataDir, "--max-key-bytes", `${MAX_KEY}`, "--max-value-bytes", `${MAX_VALUE}`, "--max-message-bytes", `${MAX_MESSAGE}`,
    "--max-batch", `${MAX_BATCH}`, "--memory-max-bytes", "4MiB", "--max-deadline", "10s"];
  return startServerChild(args, { TIERCACHE_TOKENS: JSON.stringify(tokens) });
}

// ---------- raw calls: bytes in, status out ----------

const identity = (bytes: Buffer) => bytes;

interface Answer {
  code: status;
  details: string;
  /** LeaseSession: the calls it carried and their answers. */
  carried?: Carried;
}

/** A call as a LeaseSession request names it (no method: a message without a call, answered INVALID_ARGUMENT). */
interface CarriedCall {
  method: CacheMethod | undefined;
  namespace: string | undefined;
  /** Its own deadline, in ms (0: the server's max-deadline). */
  timeoutMs: number;
}

/** One answer on a LeaseSession stream. */
interface CarriedAnswer {
  /** The method the answer names; undefined for an error, which names none. */
  method: CacheMethod | undefined;
  code: status;
  details: string;
}

/**
 * What a LeaseSession carried: the requests that decode and the answers, by
 * id. The fuzzer gives each request an id of its own (see {@link withId}),
 * but a broken message may still decode to another's.
 */
interface Carried {
  sent: Map<bigint, CarriedCall[]>;
  answers: Map<bigint, CarriedAnswer[]>;
}

function carriedCalls(requests: Buffer[], responses: Buffer[]): Carried {
  const sent = new Map<bigint, CarriedCall[]>();
  for (const bytes of requests) {
    try {
      const request = fromBinary(LeaseSessionRequestSchema, bytes);
      const call = request.call.case === undefined ? { method: undefined, namespace: undefined } : { method: request.call.case, namespace: request.call.value.namespace };
      sent.set(request.id, [...(sent.get(request.id) ?? []), { ...call, timeoutMs: request.timeoutMs }]);
    } catch {
      // A malformed message fails the stream itself.
    }
  }
  const answers = new Map<bigint, CarriedAnswer[]>();
  for (const bytes of responses) {
    const { id, result } = fromBinary(LeaseSessionResponseSchema, bytes);
    if (result.case === undefined || result.case === "ready" || result.case === "draining") continue;
    const answer =
      result.case === "error" ? { method: undefined, code: result.value.code as status, details: result.value.message } : { method: result.case, code: status.OK, details: "" };
    answers.set(id, [...(answers.get(id) ?? []), answer]);
  }
  return { sent, answers };
}

/**
 * Checks the calls a LeaseSession carried, each as its own method: every
 * answer has a request of its id to answer (one each); an OK answer only a
 * call on the fuzz token's namespace; an error a status allowed and declared
 * for the call. Throws with `label` otherwise. When broken messages left two
 * requests with one id, which one an answer is for cannot be told: an OK
 * answer then fails only if none of them names fuzz-a (the victim's Stats,
 * checked after every batch, still see a call that changed it).
 */
function checkCarried(label: string, { sent, answers }: Carried): void {
  for (const [id, answered] of answers) {
    const calls = sent.get(id) ?? [];
    const what = (answer: CarriedAnswer) =>
      `${label}; carried id ${id} (${calls.map((c) => `${c.method ?? "no call"} on ${JSON.stringify(c.namespace)}`).join(", ") || "never sent"}): ${status[answer.code] ?? answer.code} ${answer.details}`;
    if (answered.length > calls.length) throw new Error(`more answers than calls: ${what(answered.at(-1)!)}`);
    for (const answer of answered) {
      if (answer.code === status.OK) {
        const explained = calls.some((c) => c.method === answer.method && c.namespace === FUZZ_NAMESPACE);
        if (!explained) throw new Error(`namespace B reached, or a call answered OK that the token may not make: ${what(answer)}`);
        continue;
      }
      // A call ends at a deadline only at its own, when that is shorter than the stream's (the message says which).
      const after = /^deadline exceeded after (\d+) ms$/.exec(answer.details);
      const ownDeadline = answer.code === status.DEADLINE_EXCEEDED && after !== null && calls.some((c) => c.timeoutMs === Number(after[1]) && c.timeoutMs < WAITING_DEADLINE_MS);
      if (!ALLOWED.has(answer.code) && !ownDeadline) throw new Error(`status not allowed: ${what(answer)}`);
      const declared = calls.some((c) => (c.method === undefined ? answer.code === status.INVALID_ARGUMENT : METHOD_POLICIES[c.method].statuses.includes(answer.code)));
      if (!declared) throw new Error(`status not declared in core/method-policy.ts: ${what(answer)}`);
    }
  }
}

/** Sends `messages` (already encoded) to `method` and reports how the call ended; Watch is cancelled after its first event. */
function rawCall(client: Client, method: DescMethod, messages: Uint8Array[], metadata: Metadata, timeoutMs: number): Promise<Answer> {
  const path = `/${method.parent.typeName}/${method.name}`;
  const options = { deadline: Date.now() + timeoutMs };
  const buffers = messages.map((m) => Buffer.from(m.buffer, m.byteOffset, m.byteLength));
  return new Promise((resolve) => {
    let done = false;
    let cancelledByUs = false;
    const finish = (s: Partial<StatusObject> | ServiceError | null, carried?: Answer["carried"]) => {
      if (done) return;
      done = true;
      const code = s?.code ?? status.OK;
      resolve({ code: cancelledByUs && code === status.CANCELLED ? status.OK : code, details: s?.details ?? "", ...(carried && { carried }) });
    };
    switch (method.methodKind) {
      case "unary":
        client.makeUnaryRequest(path, identity, identity, buffers[0] ?? Buffer.alloc(0), metadata, options, (err) => finish(err));
        break;
      case "server_streaming": {
        const call = client.makeServerStreamRequest(path, identity, identity, buffers[0] ?? Buffer.alloc(0), metadata, options);
        call.on("data", () => {
          cancelledByUs = true;
          call.cancel();
        });
        call.on("error", finish);
        call.on("status", finish);
        break;
      }
      case "client_streaming": {
        const call = client.makeClientStreamRequest(path, identity, identity, metadata, options, (err) => finish(err));
        for (const buffer of buffers) call.write(buffer);
        call.end();
        break;
      }
      case "bidi_streaming": {
        const call = client.makeBidiStreamRequest(path, identity, identity, metadata, options);
        const received: Buffer[] = [];
        const finishStream = (s: Partial<StatusObject> | ServiceError | null) => finish(s, method.name === "LeaseSession" ? carriedCalls(buffers, received) : undefined);
        call.on("data", (data: Buffer) => void received.push(data));
        call.on("error", finishStream);
        call.on("status", finishStream);
        for (const buffer of buffers) call.write(buffer);
        call.end();
        break;
      }
    }
  });
}

// ---------- generators: protobuf built from the descriptors, then sometimes broken ----------

const utf8 = new TextEncoder();
const bytesOf = (text: string) => utf8.encode(text);

/** A byte string of `size`, cheap to make: constant, or a repeating pattern. */
const filled = fc.tuple(fc.nat(255), fc.boolean()).map(([seed, pattern]) => (size: number) => {
  const buffer = Buffer.alloc(size, seed);
  if (pattern) for (let i = 0; i < size; i++) buffer[i] = (i * 131 + seed) & 0xff;
  return new Uint8Array(buffer.buffer, buffer.byteOffset, size);
});

const invalidUtf8 = fc.oneof(
  fc.constantFrom([0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]),
  fc.array(fc.nat(255), { minLength: 1, maxLength: 12 }),
).chain((bad) => fc.tuple(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 })).map(([a, b]) => new Uint8Array([...bytesOf(a), ...bad, ...bytesOf(b)])));

const keyArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[a-z0-9:_-]{1,12}$/).map(bytesOf) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: MAX_KEY - 2, max: MAX_KEY + 2 }), fc.constantFrom("a", "é", "😀")).map(([n, ch]) => bytesOf(ch.repeat(Math.ceil(n / Buffer.byteLength(ch))))) },
  { weight: 1, arbitrary: fc.integer({ min: MAX_KEY, max: 70_000 }).map((n) => bytesOf("k".repeat(n))) },
  { weight: 2, arbitrary: invalidUtf8 },
  { weight: 1, arbitrary: fc.constantFrom("\u0000", "a\u0000b", "\n", "\r\n", "\u007f", "\u202e", "\ufeff", "\u001b[31m").map(bytesOf) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 20 }).map(bytesOf) },
);

const namespaceArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 8, arbitrary: fc.constant(bytesOf("fuzz-a")) },
  { weight: 3, arbitrary: fc.constant(bytesOf(VICTIM)) },
  { weight: 1, arbitrary: fc.constantFrom("", "default", "*", "victim*", "fuzz-a*", "fuzz-ab", "fuzz-", "Victim", "victim\u0000", " victim", "fuzz-a/../victim").map(bytesOf) },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9._-]{1,70}$/).map(bytesOf) },
  { weight: 1, arbitrary: invalidUtf8 },
);

const textArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.constantFrom("application/json", "text/plain", "", "x".repeat(255), "x".repeat(256)).map(bytesOf),
  fc.string({ maxLength: 40 }).map(bytesOf),
  invalidUtf8,
);

const valueArb: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 0, max: 64 }) },
      { weight: 2, arbitrary: fc.integer({ min: 1000, max: 1100 }) },
      { weight: 3, arbitrary: fc.integer({ min: MAX_VALUE - 2, max: MAX_VALUE + 2 }) },
      { weight: 1, arbitrary: fc.integer({ min: MAX_MESSAGE - 300, max: MAX_MESSAGE + 64 }) },
      { weight: 1, arbitrary: fc.constant(3 * MAX_MESSAGE) },
    ),
    filled,
  )
  .map(([size, fill]) => fill(size));

const int64Arb = fc.oneof(
  fc.constantFrom(0n, 1n, -1n, 1000n, 60_000n, 2n ** 63n - 1n, -(2n ** 63n), 3_153_600_000_000n, 3_153_600_000_001n, 2n ** 53n, -(2n ** 53n)),
  fc.bigInt(-(2n ** 63n), 2n ** 63n - 1n),
  fc.bigInt(0n, 10n ** 7n),
);
const uint32Arb = fc.oneof(fc.constantFrom(0, 1, 1000, 60_000, 600_000, 600_001, 2 ** 31, 2 ** 32 - 1), fc.nat({ max: 2 ** 32 - 1 }), fc.nat(100));

type Op = (writer: BinaryWriter) => void;

function scalarOp(field: DescField, scalar: ScalarType): fc.Arbitrary<Op> {
  const no = field.number;
  switch (scalar) {
    case ScalarType.STRING: {
      const arb = field.name === "namespace" ? namespaceArb : field.name === "key" || field.name === "keys" ? keyArb : textArb;
      return arb.map((bytes) => (w) => void w.tag(no, WireType.LengthDelimited).bytes(bytes));
    }
    case ScalarType.BYTES:
      return valueArb.map((bytes) => (w) => void w.tag(no, WireType.LengthDelimited).bytes(bytes));
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return int64Arb.map((n) => (w) => void w.tag(no, WireType.Varint).int64(n));
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.bigInt(0n, 2n ** 64n - 1n).map((n) => (w) => void w.tag(no, WireType.Varint).uint64(n));
    case ScalarType.BOOL:
      return fc.nat(3).map((n) => (w) => void w.tag(no, WireType.Varint).uint32(n)); // 2 and 3 are not booleans
    case ScalarType.DOUBLE:
      return fc.double().map((n) => (w) => void w.tag(no, WireType.Bit64).double(n));
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return uint32Arb.map((n) => (w) => void w.tag(no, WireType.Varint).uint32(n));
    default:
      return fc.integer().map((n) => (w) => void w.tag(no, WireType.Varint).int32(n));
  }
}

function messageOps(message: DescMessage, depth: number): fc.Arbitrary<Op[]> {
  const fields = message.fields.map((field): fc.Arbitrary<Op[]> => {
    let one: fc.Arbitrary<Op>;
    if (field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message")) {
      const inner = field.message!;
      one = depth > 2 ? fc.constant(() => {}) : messageOps(inner, depth + 1).map((ops) => (w) => {
        const sub = new BinaryWriter();
        for (const op of ops) op(sub);
        w.tag(field.number, WireType.LengthDelimited).bytes(sub.finish());
      });
    } else if (field.fieldKind === "scalar" || (field.fieldKind === "list" && field.listKind === "scalar")) {
      one = scalarOp(field, field.scalar!);
    } else {
      one = fc.integer({ min: -1, max: 10 }).map((n) => (w) => void w.tag(field.number, WireType.Varint).int32(n)); // enums
    }
    if (field.fieldKind !== "list") return fc.option(one.map((op) => [op]), { nil: [] as Op[], freq: 4 });
    return fc.oneof(
      { weight: 5, arbitrary: fc.array(one, { maxLength: 4 }) },
      { weight: 1, arbitrary: fc.array(one, { minLength: MAX_BATCH - 1, maxLength: MAX_BATCH + 1 }) },
    );
  });
  return fc.tuple(...fields).map((lists) => lists.flat());
}

/** One request message, well-formed or broken. */
interface Payload {
  bytes: Uint8Array;
}

const mutation = fc.oneof(
  fc.double({ min: 0, max: 1, noNaN: true }).map((at) => (b: Uint8Array) => b.subarray(0, Math.floor(b.length * at))),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([i, x]) => (b: Uint8Array) => {
    const copy = new Uint8Array(b);
    if (copy.length > 0) copy[i % copy.length]! ^= x;
    return copy;
  }),
  fc.uint8Array({ minLength: 1, maxLength: 16 }).map((junk) => (b: Uint8Array) => new Uint8Array([...b, ...junk])),
  fc.uint8Array({ minLength: 1, maxLength: 16 }).map((junk) => (b: Uint8Array) => new Uint8Array([...junk, ...b])),
);

const payloads = new Map<DescMessage, fc.Arbitrary<Payload>>();
function payloadArb(message: DescMessage): fc.Arbitrary<Payload> {
  let arb = payloads.get(message);
  if (arb) return arb;
  const structured = messageOps(message, 0).map((ops): Payload => {
    const w = new BinaryWriter();
    for (const op of ops) op(w);
    return { bytes: w.finish() };
  });
  arb = fc.oneof(
    { weight: 14, arbitrary: structured },
    { weight: 3, arbitrary: fc.tuple(structured, mutation).map(([p, mutate]): Payload => ({ bytes: mutate(p.bytes) })) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes): Payload => ({ bytes })) },
    { weight: 1, arbitrary: fc.constant<Payload>({ bytes: new Uint8Array(0) }) },
  );
  payloads.set(message, arb);
  return arb;
}

/** The authorization header sent, and whether it holds the fuzz token. */
const credentialArb: fc.Arbitrary<{ header: string | undefined; valid: boolean }> = fc.oneof(
  { weight: 14, arbitrary: fc.constant({ header: `Bearer ${FUZZ_TOKEN}`, valid: true }) },
  { weight: 1, arbitrary: fc.constant({ header: `bearer   ${FUZZ_TOKEN}`, valid: true }) },
  { weight: 1, arbitrary: fc.constant({ header: undefined, valid: false }) },
  { weight: 1, arbitrary: fc.constantFrom(FUZZ_TOKEN.slice(0, -1), `${FUZZ_TOKEN}x`, FUZZ_TOKEN.toUpperCase(), "").map((t) => ({ header: `Bearer ${t}`, valid: false })) },
  { weight: 1, arbitrary: fc.stringMatching(/^[!-~][ -~]{0,40}$/).map((header) => ({ header, valid: false })) },
);

interface Request {
  method: DescMethod;
  payloads: Payload[];
  credential: { header: string | undefined; valid: boolean };
}

/**
 * The namespaces a request message acts on, as the contract defines them
 * (worked out here, not with the server's own rules): "" is the default
 * namespace; a Stats request without one, or a Watch without cursors, acts
 * on every namespace ("*"). Undefined when the message does not decode (the
 * server refuses it too). Not used for LeaseSession, whose calls are checked
 * one by one.
 */
function namespacesNamed(method: DescMethod, bytes: Uint8Array): string[] | undefined {
  let message: { namespace?: string; cursors?: { namespace: string }[] };
  try {
    message = fromBinary(method.input, bytes) as typeof message;
  } catch {
    return undefined;
  }
  const named = (ns: string) => (ns === "" ? "default" : ns);
  if (method.name === "Watch") return message.cursors!.length === 0 ? ["*"] : message.cursors!.map((c) => named(c.namespace));
  if (method.name === "Stats") return message.namespace === "" ? ["*"] : [message.namespace!];
  return [named(message.namespace ?? "")];
}

/**
 * A LeaseSession message with its `id` field set to `id` at the end (the last
 * value of a field wins), so that every answer names the one request it
 * answers. Repeated ids are the server's unit tests' business. A broken
 * message may swallow the field and keep an id of its own: ids unlike the
 * generator's (which favours small and extreme values) keep that from
 * colliding with another's.
 */
function withId(payload: Payload, index: number): Payload {
  const id = new BinaryWriter().tag(1, WireType.Varint).uint64(1_000_003 + index * 7919).finish();
  return { ...payload, bytes: new Uint8Array([...payload.bytes, ...id]) };
}

const requestArb: fc.Arbitrary<Request> = fc.constantFrom(...CacheService.methods).chain((method) => {
  const streamed = method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming";
  let messages = streamed ? fc.array(payloadArb(method.input), { maxLength: 4 }) : payloadArb(method.input).map((p) => [p]);
  if (method.name === "LeaseSession") messages = messages.map((payloads) => payloads.map((p, i) => withId(p, i)));
  return fc.record({ method: fc.constant(method), payloads: messages, credential: credentialArb });
});

function metadataOf(header: string | undefined): Metadata {
  const metadata = new Metadata();
  if (header !== undefined) metadata.set("authorization", header);
  return metadata;
}

/** A zstd envelope of `declared` bytes whose payload really expands to `actual` bytes. */
function bombEnvelope(declared: number, actual: number): Buffer {
  const payload = compress(Buffer.alloc(actual));
  const header = Buffer.alloc(ENVELOPE_HEADER_BYTES);
  header[0] = ENVELOPE_VERSION;
  header[1] = FLAG_COMPRESSED;
  header.writeDoubleBE(0, 2);
  header.writeUInt32BE(declared, 10);
  header[14] = 0;
  return Buffer.concat([header, payload]);
}

describe("fuzzing the wire against a live server", () => {
  const dir = tempDir("tiercache-fuzz-");
  let server: ServerChild;
  let client: Client;
  const admin = metadataOf(`Bearer ${ADMIN_TOKEN}`);

  beforeAll(async () => {
    // Zstd bombs written straight into the durable store, as a corrupted disk or a hostile writer could leave them.
    const tier = LmdbTier.open({ dataDir: dir.path });
    await tier.setMany("bomb", [
      { key: "declares-huge", envelope: bombEnvelope(0xffff_ffff, 64 * 1024 ** 2), expiresAt: 0 },
      { key: "declares-small", envelope: bombEnvelope(100, 64 * 1024 ** 2), expiresAt: 0 },
      { key: "declares-limit", envelope: bombEnvelope(MAX_VALUE, 128 * 1024 ** 2), expiresAt: 0 },
    ]);
    await tier.close();
    server = await startFuzzServer(dir.path);
    client = new Client(server.address, credentials.createInsecure());
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await server?.stop();
    dir.remove();
  });

  const call = (name: string, message: Record<string, unknown>, metadata: Metadata) => {
    const method = CacheService.methods.find((m) => m.name === name)!;
    return rawCall(client, method, [toBinaryOf(method.input, message)], metadata, 5000);
  };

  it("refuses zstd bombs from the durable tier without expanding them", async () => {
    for (const key of ["declares-huge", "declares-small", "declares-limit"]) {
      for (const name of ["Get", "GetMany"]) {
        const answer = await call(name, name === "Get" ? { namespace: "bomb", key } : { namespace: "bomb", keys: [key] }, admin);
        expect([status.DATA_LOSS, status.RESOURCE_EXHAUSTED], `${name} ${key}: ${status[answer.code]} ${answer.details}`).toContain(answer.code);
      }
    }
    const memory = await server.memory();
    expect(memory.rssAnon ?? memory.rss).toBeLessThan(512 * 1024 ** 2); // nowhere near the 64-128 MiB each bomb would expand to
  });

  it("answers every request with a proper status, keeps namespace B intact, stays up and does not leak", async () => {
    // Namespace B, written with the admin token before the run.
    const victimKeys = Array.from({ length: 20 }, (_, i) => `v${i}`);
    for (const key of victimKeys) {
      const answer = await call("Set", { namespace: VICTIM, key, value: bytesOf(`"value of ${key}"`), contentType: "application/json" }, admin);
      expect(answer.code).toBe(status.OK);
    }
    /** What any call that reached namespace B would change: its reads, writes, entries and tag invalidations, per tier. */
    const victimStats = async () => {
      const method = CacheService.method.stats;
      const bytes = await rawUnaryBytes(client, method, toBinaryOf(method.input, { namespace: VICTIM }), admin);
      type Tier = { hits: bigint; misses: bigint; sets: bigint; deletes: bigint; entries: bigint; bytes: bigint };
      const stats = fromBinaryOf(method.output, bytes) as { namespaces: { tiers: Tier[]; tagInvalidations: bigint }[] };
      return stats.namespaces
        .map((ns) => `${ns.tiers.map((t) => `hits ${t.hits} misses ${t.misses} sets ${t.sets} deletes ${t.deletes} entries ${t.entries} bytes ${t.bytes}`).join("; ")}; tag invalidations ${ns.tagInvalidations}`)
        .join(" | ");
    };
    const statsBefore = await victimStats();

    // Warm up, then measure.
    for (let i = 0; i < 200; i++) await call("Set", { namespace: "fuzz-a", key: `warm${i % 20}`, value: new Uint8Array(i * 40) }, metadataOf(`Bearer ${FUZZ_TOKEN}`));
    const before = await server.memory();

    const counts = new Map<string, number>();
    let requests = 0;
    let messages = 0;
    const ownLoop = stallMeter();
    const ownStalls: number[] = [];
    /** Checks the answers to `batch`, but those in `excused` (a deadline that says nothing about the server). */
    const check = (batch: Request[], answers: Answer[], note: string, excused: ReadonlySet<number> = new Set()) => {
      for (const [i, answer] of answers.entries()) {
        if (excused.has(i)) continue;
        const r = batch[i]!;
        requests++;
        messages += r.payloads.length;
        const name = status[answer.code] ?? String(answer.code);
        counts.set(name, (counts.get(name) ?? 0) + 1);
        const label = `${r.method.name} (${r.credential.valid ? "fuzz token" : "bad credentials"}, ${r.payloads.length} messages): ${name} ${answer.details}${note}`;
        const allowed = ALLOWED.has(answer.code) || (WAITING.has(r.method.name) && answer.code === status.DEADLINE_EXCEEDED);
        if (!allowed) throw new Error(`status not allowed: ${label}`);
        const declared = answer.code === status.OK || METHOD_POLICIES[r.method.localName as CacheMethod].statuses.includes(answer.code);
        if (!declared) throw new Error(`status not declared in core/method-policy.ts: ${label}`);
        if (!r.credential.valid && ![status.UNAUTHENTICATED, status.RESOURCE_EXHAUSTED].includes(answer.code)) throw new Error(`bad credentials got through: ${label}`);
        // A LeaseSession's status is the stream's: each call it carried is answered on its own.
        if (answer.carried) {
          if (!r.credential.valid && answer.carried.answers.size > 0) throw new Error(`bad credentials got through: ${label}`);
          checkCarried(label, answer.carried);
        }
        // The token may act on fuzz-a only: a call that names anything else (the default namespace included), or
        // no namespace at all (every namespace, for Stats and Watch), is refused. A LeaseSession's calls are checked above.
        const elsewhere = () => r.payloads.some((p) => namespacesNamed(r.method, p.bytes)?.some((ns) => ns !== FUZZ_NAMESPACE));
        if (r.credential.valid && answer.code === status.OK && answer.carried === undefined && elsewhere()) throw new Error(`namespace B reached, or another the token may not use: ${label}`);
      }
    };
    const started = Date.now();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(requestArb, { minLength: 1, maxLength: 6 }), async (batch) => {
          const deadlines = batch.map((r) => (WAITING.has(r.method.name) ? WAITING_DEADLINE_MS : CALL_DEADLINE_MS));
          const run = async () => {
            await server.loopDelay(); // starts the server's figure afresh
            ownLoop.reset();
            const startedAt = performance.now();
            const answers = await Promise.all(batch.map((r, i) => rawCall(client, r.method, r.payloads.map((p) => p.bytes), metadataOf(r.credential.header), deadlines[i]!)));
            const stops = ownLoop.stops();
            const ownMs = Math.max(0, ...stops.map((s) => s.to - s.from));
            const late = answers.some((answer) => answer.code === status.DEADLINE_EXCEEDED);
            const serverMs = late ? (await server.loopDelay()).maxMs : 0;
            const note = late ? ` (while the batch ran, the longest event-loop stop was ${ownMs.toFixed(0)} ms in this test, ${serverMs.toFixed(0)} ms in the server)` : "";
            // A call whose deadline passed while this test stood still, and which this test was awake for less than
            // AWAKE_MS of, may have had a prompt answer waiting unread: its timer fired late, before the answer was
            // read. That deadline says nothing about the server, unless the server stood still longer still (a stall
            // of its own that a pause of this test happened to cross). A call this test was awake for longer had
            // its answer read in that time, had it come.
            const excusable = (i: number) => {
              const due = startedAt + deadlines[i]!;
              if (!stops.some((s) => s.from <= due && due <= s.to)) return false;
              const still = stops.reduce((sum, s) => sum + Math.max(0, Math.min(s.to, due) - Math.max(s.from, startedAt)), 0);
              return deadlines[i]! - still < AWAKE_MS && serverMs <= ownMs + SERVER_STOP_SLACK_MS;
            };
            const excused = new Set(answers.flatMap((answer, i) => (answer.code === status.DEADLINE_EXCEEDED && excusable(i) ? [i] : [])));
            return { answers, ownMs, note, excused };
          };
          const first = await run();
          check(batch, first.answers, first.note, first.excused);
          if (first.excused.size > 0) {
            ownStalls.push(first.ownMs);
            const second = await run();
            check(batch, second.answers, `${second.note}; the batch's second run, after this test stood still for ${first.ownMs.toFixed(0)} ms in its first`);
          }
          if (server.exited()) throw new Error(`the server died: ${server.stderr()}`);
          // Whatever the answers said, the server's own counters tell whether a call reached namespace B.
          const victimNow = await victimStats();
          if (victimNow !== statsBefore) {
            const calls = batch.map((r) => `${r.method.name} on ${JSON.stringify(r.payloads.map((p) => namespacesNamed(r.method, p.bytes) ?? "?"))}`).join(", ");
            throw new Error(`namespace B reached: its stats went from ${statsBefore} to ${victimNow} in a batch of ${calls}`);
          }
        }),
        { numRuns: RUNS, endOnFailure: true, ...REPLAY },
      );
    } finally {
      ownLoop.stop();
    }
    const elapsed = Date.now() - started;

    // Still up: a normal call works.
    const get = await call("Get", { namespace: "fuzz-a", key: "warm1" }, metadataOf(`Bearer ${FUZZ_TOKEN}`));
    expect(get.code).toBe(status.OK);

    // Namespace B is exactly as it was (its stats first: the reads below count in them).
    expect(await victimStats()).toBe(statsBefore);
    for (const key of victimKeys) {
      const method = CacheService.method.get;
      const bytes = await rawUnaryBytes(client, method, toBinaryOf(method.input, { namespace: VICTIM, key }), admin);
      const res = fromBinaryOf(method.output, bytes) as { found: boolean; value: Uint8Array };
      expect(res.found, key).toBe(true);
      expect(new TextDecoder().decode(res.value)).toBe(`"value of ${key}"`);
    }

    const after = await server.memory();
    const crashes = server.exited() ? 1 : 0;
    const mib = (n: number | undefined) => (n === undefined ? "?" : `${(n / 1024 ** 2).toFixed(1)} MiB`);
    const byCode = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(" ");
    console.log(
      `fuzz: ${requests} requests (${messages} messages) in ${(elapsed / 1000).toFixed(1)} s; statuses ${byCode}; crashes ${crashes}; ` +
        `batches run again after this test's process stood still: ${ownStalls.length}${ownStalls.length > 0 ? ` (${ownStalls.map((ms) => `${ms.toFixed(0)} ms`).join(", ")})` : ""}; ` +
        `rss ${mib(before.rss)} -> ${mib(after.rss)} (anonymous ${mib(before.rssAnon)} -> ${mib(after.rssAnon)}, heap ${mib(before.heap)} -> ${mib(after.heap)}, external ${mib(before.external)} -> ${mib(after.external)})`,
    );
    const internal = server.stderr().split("\n").filter((line) => line.includes("unexpected error"));
    expect(internal).toEqual([]);
    expect(crashes).toBe(0);
    expect((after.rssAnon ?? after.rss) - (before.rssAnon ?? before.rss)).toBeLessThan(RSS_BOUND);
  }, 120_000);
});

// ---------- this test's own event loop ----------

/** A stop of this process's event loop, in performance.now() ms. */
interface Stop {
  from: number;
  to: number;
}

/**
 * The stops of this process's event loop since `reset()`, as a 10 ms ticker
 * sees them (those of 50 ms or more). A stop that no tick has ended yet
 * counts too, up to now: the timers that end calls at their deadline may run
 * before the ticker's after a stop.
 */
function stallMeter(): { reset(): void; stops(): Stop[]; stop(): void } {
  let last = performance.now();
  let stops: Stop[] = [];
  const timer = setInterval(() => {
    const now = performance.now();
    if (now - last >= 50) stops.push({ from: last, to: now });
    last = now;
  }, 10);
  return {
    reset: () => {
      stops = [];
      last = performance.now();
    },
    stops: () => {
      const now = performance.now();
      return now - last >= 50 ? [...stops, { from: last, to: now }] : stops;
    },
    stop: () => clearInterval(timer),
  };
}

// ---------- small helpers for well-formed calls ----------

function toBinaryOf(schema: DescMessage, init: Record<string, unknown>): Uint8Array {
  return toBinary(schema, create(schema, init as never));
}

function fromBinaryOf(schema: DescMessage, bytes: Uint8Array): unknown {
  return fromBinary(schema, bytes);
}

function rawUnaryBytes(client: Client, method: DescMethod, body: Uint8Array, metadata: Metadata): Promise<Buffer> {
  const path = `/${method.parent.typeName}/${method.name}`;
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(path, identity, identity, Buffer.from(body), metadata, { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res!))),
  );
}
