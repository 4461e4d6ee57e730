import { createHash } from "node:crypto";
import { Command } from "ioredis";

/**
 * setMany of the Redis tier as one Lua script call instead of a MULTI/EXEC of
 * one SET per entry: one command whose bytes are laid out here in one buffer
 * and one reply per batch, instead of ioredis's Command object, serialized
 * buffer and two replies (QUEUED + result) per entry.
 */

/** The TTL of a write: ms for PX, "none" for no expiry, "expired" when the expiry has passed (the write is a delete). */
export type Ttl = number | "none" | "expired";

/** One entry of a batch: its full Redis key (see redis-keys.ts) and envelope. */
export interface SetManyItem {
  readonly id: string;
  readonly value: Buffer;
  readonly expiresAt: number;
}

/**
 * Largest batch sent as one script call, in bytes as counted by
 * {@link setManyBytes}. A larger batch goes as MULTI/EXEC (one SET per
 * entry): one script call holds its whole batch in Redis's query buffer and
 * Lua heap, and holds Redis for its whole run.
 */
export const SET_MANY_SCRIPT_MAX_BYTES = 16 * 1024 ** 2;

/**
 * Largest average entry (bytes by {@link setManyBytes} per entry) of a batch
 * sent as a script. Every value passes through a Lua string, and Lua hashes
 * each string byte by byte when it interns it (the Redis 7.0 build here:
 * ~1.3 ns per byte), on Redis's one thread; MULTI/EXEC hands values to SET
 * untouched. Measured with 1,000 entries per batch (Redis CPU per entry,
 * MULTI → script; Node CPU per entry, MULTI → script): 1 KiB values 1.6 →
 * 3.1 µs and 7.5 → 2.1 µs; 2 KiB 2.5 → 5.2 and 7.7 → 3.2; 8 KiB 5.3 → 16.9
 * and 14.6 → 7.4, where Redis becomes the bottleneck. Small entries are where
 * ioredis's per-command cost dominates; big ones go as MULTI/EXEC.
 */
export const SET_MANY_SCRIPT_MAX_ENTRY_BYTES = 2048;

/** What an entry costs besides its key and value bytes (argument headers, TTL). */
const ENTRY_OVERHEAD = 64;

/**
 * KEYS: the keys of the batch (one namespace, so one hash tag and one Cluster
 * slot). ARGV: per key, its value and its TTL: "" = no expiry, "-" = delete
 * (the value is empty), else PX milliseconds as decimal digits (a string, so
 * Lua never turns them into a float). Returns the number of entries applied.
 */
export const SET_MANY_LUA = `
for i = 1, #KEYS do
  local px = ARGV[2 * i]
  if px == '' then redis.call('SET', KEYS[i], ARGV[2 * i - 1])
  elseif px == '-' then redis.call('UNLINK', KEYS[i])
  else redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'PX', px) end
end
return #KEYS
`;

/** The size of `items` against the limits above: value bytes, keys at 3 bytes per UTF-16 unit (the most UTF-8 needs), and a per-entry overhead. */
export function setManyBytes(items: readonly SetManyItem[]): number {
  let bytes = 0;
  for (const { id, value } of items) bytes += ENTRY_OVERHEAD + 3 * id.length + value.byteLength;
  return bytes;
}

/** Whether `items` go as one {@link SET_MANY_LUA} call (else as MULTI/EXEC): small enough in total and per entry on average. */
export function setManyByScript(items: readonly SetManyItem[]): boolean {
  const bytes = setManyBytes(items);
  return bytes <= SET_MANY_SCRIPT_MAX_BYTES && bytes <= items.length * SET_MANY_SCRIPT_MAX_ENTRY_BYTES;
}

/** What sends a command: the tier's ioredis client (standalone, Sentinel or Cluster). */
export interface CommandSender {
  sendCommand(command: Command): unknown;
}

/**
 * Runs {@link SET_MANY_LUA} on `items` (at least one), each TTL from `ttl`
 * (called now, so that a retry sends fresh TTLs), and resolves with the
 * number of entries applied. EVALSHA first; on NOSCRIPT (a restarted or
 * flushed Redis, a Cluster node that never saw it) once more as EVAL.
 */
export async function runSetMany(client: CommandSender, items: readonly SetManyItem[], ttl: (expiresAt: number) => Ttl): Promise<number> {
  const body = setManyBody(items, ttl);
  try {
    return await send(client, new SetManyCommand("evalsha", items[0]!.id, body));
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
    return send(client, new SetManyCommand("eval", items[0]!.id, body));
  }
}

function send(client: CommandSender, command: SetManyCommand): Promise<number> {
  client.sendCommand(command);
  return command.promise as Promise<number>;
}

const SET_MANY_SHA = createHash("sha1").update(SET_MANY_LUA).digest("hex");

/**
 * EVALSHA (or EVAL) of {@link SET_MANY_LUA} whose RESP frame is built here
 * in one buffer, with one copy of each value: ioredis's own serialization
 * makes several passes and a string or two per argument (3 per entry here),
 * which cost more than the copies. The arguments ioredis sees hold only the
 * first key, enough for it to route the command to the batch's Cluster slot.
 */
class SetManyCommand extends Command {
  readonly #frame: Buffer;

  constructor(name: "evalsha" | "eval", routingKey: string, body: SetManyBody) {
    const script = name === "evalsha" ? SET_MANY_SHA : SET_MANY_LUA;
    super(name, [script, 1, routingKey], { replyEncoding: "utf8" });
    this.#frame = frame(name, script, body);
  }

  override toWritable(): Buffer {
    return this.#frame;
  }
}

/** The keys, values and TTLs of a batch as they go on the wire, with their sizes. */
interface SetManyBody {
  readonly items: readonly SetManyItem[];
  readonly keyBytes: number[];
  readonly ttls: string[];
  readonly bytes: number;
}

const EMPTY = Buffer.alloc(0);

function setManyBody(items: readonly SetManyItem[], ttl: (expiresAt: number) => Ttl): SetManyBody {
  const n = items.length;
  const keyBytes = new Array<number>(n);
  const ttls = new Array<string>(n);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const { id, value, expiresAt } = items[i]!;
    const k = Buffer.byteLength(id, "utf8");
    const t = ttl(expiresAt);
    const digits = t === "none" ? "" : t === "expired" ? "-" : String(t);
    const v = t === "expired" ? 0 : value.byteLength;
    keyBytes[i] = k;
    ttls[i] = digits;
    bytes += bulkBytes(k) + bulkBytes(v) + bulkBytes(digits.length);
  }
  return { items, keyBytes, ttls, bytes };
}

/** Bytes of a RESP bulk string of `n` bytes: `$n\r\n…\r\n`. */
function bulkBytes(n: number): number {
  return 1 + String(n).length + 2 + n + 2;
}

/** The RESP frame `name script numkeys key… (value ttl)…`. */
function frame(name: string, script: string, body: SetManyBody): Buffer {
  const { items, keyBytes, ttls } = body;
  const n = items.length;
  const head = `*${3 + 3 * n}\r\n$${name.length}\r\n${name}\r\n$${Buffer.byteLength(script)}\r\n${script}\r\n$${String(n).length}\r\n${n}\r\n`;
  const headBytes = Buffer.byteLength(head);
  const out = Buffer.allocUnsafe(headBytes + body.bytes);
  let pos = out.write(head, 0, "utf8");
  for (let i = 0; i < n; i++) {
    pos += out.write(`$${keyBytes[i]}\r\n`, pos, "latin1");
    pos += out.write(items[i]!.id, pos, "utf8");
    pos = crlf(out, pos);
  }
  for (let i = 0; i < n; i++) {
    const digits = ttls[i]!;
    const value = digits === "-" ? EMPTY : items[i]!.value;
    pos += out.write(`$${value.byteLength}\r\n`, pos, "latin1");
    out.set(value, pos);
    pos = crlf(out, pos + value.byteLength);
    pos += out.write(`$${digits.length}\r\n${digits}\r\n`, pos, "latin1");
  }
  if (pos !== out.byteLength) throw new Error(`setMany frame: wrote ${pos} of ${out.byteLength} bytes`);
  return out;
}

function crlf(out: Buffer, pos: number): number {
  out[pos] = 13;
  out[pos + 1] = 10;
  return pos + 2;
}
