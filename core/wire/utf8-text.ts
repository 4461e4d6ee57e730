import { configureTextEncoding, getTextEncoding } from "@bufbuild/protobuf/wire";

/**
 * UTF-8 decoding of the contract's string fields that keeps a leading
 * U+FEFF. A WHATWG TextDecoder drops it by default (`ignoreBOM: false`), so
 * the key "\uFEFFuser:1" decoded as "user:1": a Set, Get or Delete of one
 * key reached another, and a tag named the same way hid another tag's
 * values. Protobuf strings are text, not documents with a byte-order mark:
 * other languages' runtimes keep it, and so must we.
 */

/** Throws on invalid UTF-8; keeps a leading U+FEFF. */
export const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenientUtf8 = new TextDecoder("utf-8", { ignoreBOM: true });

let configured = false;

/**
 * Makes protobuf-es (which decodes whatever the compiled codec hands back to
 * it) keep a leading U+FEFF too. Its text encoding is one setting for the
 * whole process: this keeps the encoder and check it had and replaces only
 * the decoder. Idempotent.
 */
export function keepByteOrderMarks(): void {
  if (configured) return;
  configured = true;
  const { encodeUtf8, checkUtf8 } = getTextEncoding();
  configureTextEncoding({
    encodeUtf8,
    checkUtf8,
    decodeUtf8: (bytes, strict) => (strict === true ? strictUtf8 : lenientUtf8).decode(bytes),
  });
}
