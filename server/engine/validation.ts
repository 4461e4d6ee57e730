import { InvalidArgumentError, ValueTooLargeError } from "../../core/errors.js";
import { DEFAULT_NAMESPACE, keyProblem, namespaceProblem, preview, resolveNamespace } from "../../core/key-rules.js";
import { MAX_TTL_MS } from "../../core/ttl-rules.js";

export { DEFAULT_NAMESPACE, MAX_TTL_MS };

/** Returns the namespace to use ("" = the default), or throws InvalidArgumentError naming the rule broken. */
export function checkNamespace(namespace: string): string {
  const problem = namespaceProblem(namespace);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  return resolveNamespace(namespace);
}

/** Throws InvalidArgumentError for a key that breaks core/key-rules or is over `maxKeyBytes` UTF-8 bytes. */
export function checkKey(key: string, maxKeyBytes: number): void {
  const problem = keyProblem(key);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  if (key.length * 3 > maxKeyBytes && Buffer.byteLength(key, "utf8") > maxKeyBytes) {
    throw new InvalidArgumentError(`key ${preview(key)} is longer than max-key-bytes (${maxKeyBytes} bytes)`);
  }
}

/** Throws InvalidArgumentError unless `ttlMs` is a whole number from 0 to MAX_TTL_MS. */
export function checkTtl(ttlMs: number, field = "ttl_ms"): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0 || ttlMs > MAX_TTL_MS) {
    const meaning = field === "ttl_ms" ? "0 (namespace default)" : "0 (none)";
    throw new InvalidArgumentError(`${field} ${ttlMs} is out of range: use ${meaning} up to ${MAX_TTL_MS} ms`);
  }
}

/** Throws ValueTooLargeError when a batch holds more than `maxBatch` items. */
export function checkBatch(size: number, maxBatch: number): void {
  if (size > maxBatch) throw new ValueTooLargeError(`batch of ${size} items is over max-batch (${maxBatch})`);
}

/** Longest writer id a Set may name (it is kept in the Watch history). */
export const MAX_WRITER_ID_BYTES = 64;

/**
 * Shortest writer id: it must be a random id of one client process, since
 * that process's Watch never hears of Sets made under it by anyone else.
 */
export const MIN_WRITER_ID_BYTES = 16;

/** Throws InvalidArgumentError for a writer id outside MIN_WRITER_ID_BYTES to MAX_WRITER_ID_BYTES UTF-8 bytes. */
export function checkWriterId(writerId: string): void {
  const bytes = Buffer.byteLength(writerId, "utf8");
  if (bytes > MAX_WRITER_ID_BYTES) {
    throw new InvalidArgumentError(`writer_id is longer than ${MAX_WRITER_ID_BYTES} bytes`);
  }
  if (bytes < MIN_WRITER_ID_BYTES) {
    throw new InvalidArgumentError(
      `writer_id is shorter than ${MIN_WRITER_ID_BYTES} bytes: use a random id of one client process (at least 12 random bytes, base64), never one shared by several, since a client's Watch leaves out the Sets made under its writer_id`,
    );
  }
}
