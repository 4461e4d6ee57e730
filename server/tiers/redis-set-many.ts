/**
 * setMany of the Redis tier as one Lua script call instead of a MULTI/EXEC of
 * one SET per entry: ioredis then builds one command and parses one reply per
 * batch, not a Command object, a buffer and two replies (QUEUED + result) per
 * entry.
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

/**
 * The arguments of {@link SET_MANY_LUA} after the script: the key count, the
 * keys, then value and TTL per key, each TTL from `ttl` (called now, so that a
 * retry sends fresh TTLs).
 */
export function setManyArgs(items: readonly SetManyItem[], ttl: (expiresAt: number) => Ttl): (string | number | Buffer)[] {
  const n = items.length;
  const args = new Array<string | number | Buffer>(1 + 3 * n);
  args[0] = n;
  for (let i = 0; i < n; i++) {
    const { id, value, expiresAt } = items[i]!;
    const t = ttl(expiresAt);
    args[1 + i] = id;
    args[n + 1 + 2 * i] = t === "expired" ? "" : value;
    args[n + 2 + 2 * i] = t === "none" ? "" : t === "expired" ? "-" : String(t);
  }
  return args;
}
