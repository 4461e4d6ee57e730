/**
 * What the Watch history costs, estimated without walking the heap: every
 * string at two bytes a character (UTF-16; V8 stores Latin-1 text in one, so
 * this errs high) plus fixed overheads measured on Node 20 / V8 11 (64-bit)
 * by `test/unit/history-size.test.ts`, which fails if they fall below what the
 * heap really holds.
 */

/** One retained event: the numbered change object, its keys array, and its slots in the namespace's and the global FIFO. */
export const EVENT_OVERHEAD_BYTES = 160;
/** One key of a retained event: the array slot and the string's header. */
export const KEY_OVERHEAD_BYTES = 32;
/** One namespace log held for its history: the log, its FIFO and listener set, and its map entry. */
export const NAMESPACE_LOG_OVERHEAD_BYTES = 560;

/** One event's write origin (see WriteOrigin): the object and its bigint. */
export const ORIGIN_OVERHEAD_BYTES = 64;

/** Estimated bytes of one retained event with these keys and writer id (its namespace string is the log's, counted there). */
export function eventBytes(keys: readonly string[], writerId?: string): number {
  let bytes = EVENT_OVERHEAD_BYTES;
  if (writerId !== undefined) bytes += ORIGIN_OVERHEAD_BYTES + 2 * writerId.length;
  for (const key of keys) bytes += KEY_OVERHEAD_BYTES + 2 * key.length;
  return bytes;
}

/** Estimated bytes of a namespace log, empty. */
export function namespaceLogBytes(namespace: string): number {
  return NAMESPACE_LOG_OVERHEAD_BYTES + 2 * namespace.length;
}
