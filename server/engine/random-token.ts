import { randomFillSync } from "node:crypto";

/** Random bytes in one token (96 bits), written as 16 base64url characters. */
const TOKEN_BYTES = 12;
/** Tokens drawn from the system's CSPRNG per refill: one call per 256 tokens instead of one per token. */
const POOL_TOKENS = 256;

const pool = Buffer.alloc(TOKEN_BYTES * POOL_TOKENS);
let used = pool.byteLength;

/**
 * A new unguessable token (a lease's fencing token): 12 bytes from the
 * CSPRNG as base64url. The bytes are drawn in blocks, as Node's own
 * `randomUUID` does (one `randomBytes(12)` per lease took 5.7 µs here,
 * a pooled token 0.14 µs); each byte is still used once only. The bytes of
 * up to 255 future tokens wait in the process's memory meanwhile.
 */
export function randomToken(): string {
  if (used + TOKEN_BYTES > pool.byteLength) {
    randomFillSync(pool);
    used = 0;
  }
  const token = pool.toString("base64url", used, used + TOKEN_BYTES);
  used += TOKEN_BYTES;
  return token;
}
