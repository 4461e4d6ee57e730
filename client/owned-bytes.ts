/**
 * Byte values the local tier keeps. A value decoded from a response is a
 * view into the whole response message, and the value `wrap` writes is the
 * caller's own object: kept as they are, the first would hold every other
 * value of its response in memory (past the tier's maxBytes, which counts
 * only the value's own bytes), and the second would change whenever the
 * caller reuses its buffer (in the local copy, and in the Set request, which
 * may wait for a stream to open after `wrap` has returned).
 */

/** A copy of `bytes` of the same kind (a Buffer stays a Buffer) that owns exactly its bytes. */
function copyOf(bytes: Uint8Array): Uint8Array {
  if (Buffer.isBuffer(bytes)) {
    const copy = Buffer.allocUnsafeSlow(bytes.byteLength);
    copy.set(bytes);
    return copy;
  }
  return Uint8Array.prototype.slice.call(bytes);
}

/** `value`, or a copy when it is a byte array that views part of a larger buffer. */
export function withoutSharedBuffer(value: unknown): unknown {
  if (!(value instanceof Uint8Array)) return value;
  return value.byteOffset === 0 && value.byteLength === value.buffer.byteLength ? value : copyOf(value);
}

/**
 * `encoded` (what a serializer made of a value) with bytes of its own: a
 * serializer may hand back the caller's buffer, or bytes that share memory
 * with any other part of the value, which the caller may change before a
 * write in the background is sent.
 */
export function encodingOfItsOwn<E extends { readonly bytes: Uint8Array }>(encoded: E): E {
  return { ...encoded, bytes: copyOf(encoded.bytes) };
}
