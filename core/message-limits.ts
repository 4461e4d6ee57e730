/**
 * The largest gRPC message the server accepts and sends by default
 * (`--max-message-bytes`); clients accept answers this large by default.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 ** 2;

/**
 * The LeaseSession request header in which a client tells the largest
 * message it reads: the server answers a call whose answer would be larger
 * with that call's own RESOURCE_EXHAUSTED, instead of sending it and making
 * the client fail the whole stream.
 */
export const MAX_RECEIVE_HEADER = "tiercache-max-receive-message-bytes";

/**
 * At most the encoded bytes of a flat message: its bytes fields, its strings
 * (and lists of strings) at 3 UTF-8 bytes a UTF-16 unit, plus `framingBytes`
 * for tags, lengths and numbers.
 */
export function flatMessageBytesAtMost(message: object, framingBytes: number): number {
  let bytes = framingBytes;
  for (const field of Object.values(message)) {
    if (field instanceof Uint8Array) bytes += field.byteLength;
    else if (typeof field === "string") bytes += 3 * field.length;
    else if (Array.isArray(field)) for (const item of field) if (typeof item === "string") bytes += 3 * item.length + 8;
  }
  return bytes;
}
