import { InvalidArgumentError, ValueTooLargeError } from "../../core/errors.js";

/** The namespace used when a request names none. */
export const DEFAULT_NAMESPACE = "default";

const NAMESPACE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The longest TTL accepted: about 100 years, far below float precision limits. */
export const MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000;

function preview(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

/** Returns the namespace to use, or throws InvalidArgumentError naming the rule broken. */
export function checkNamespace(namespace: string): string {
  if (namespace === "") return DEFAULT_NAMESPACE;
  if (!NAMESPACE_PATTERN.test(namespace)) {
    throw new InvalidArgumentError(
      `invalid namespace ${preview(namespace)}: use 1 to 64 characters of [A-Za-z0-9._-], starting with a letter or digit`,
    );
  }
  return namespace;
}

/** Throws InvalidArgumentError for an empty key or one over `maxKeyBytes` UTF-8 bytes. */
export function checkKey(key: string, maxKeyBytes: number): void {
  if (key.length === 0) throw new InvalidArgumentError("key must not be empty");
  if (key.length * 3 > maxKeyBytes && Buffer.byteLength(key, "utf8") > maxKeyBytes) {
    throw new InvalidArgumentError(`key ${preview(key)} is longer than max-key-bytes (${maxKeyBytes} bytes)`);
  }
}

/** Throws InvalidArgumentError unless `ttlMs` is a whole number from 0 to MAX_TTL_MS. */
export function checkTtl(ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 0 || ttlMs > MAX_TTL_MS) {
    throw new InvalidArgumentError(`ttl_ms ${ttlMs} is out of range: use 0 (namespace default) up to ${MAX_TTL_MS} ms`);
  }
}

/** Throws ValueTooLargeError when a batch holds more than `maxBatch` items. */
export function checkBatch(size: number, maxBatch: number): void {
  if (size > maxBatch) throw new ValueTooLargeError(`batch of ${size} items is over max-batch (${maxBatch})`);
}
