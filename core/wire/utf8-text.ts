import { configureTextEncoding, getTextEncoding } from "@bufbuild/protobuf/wire";
import { strictUtf8 } from "../utf8.js";

type TextEncoding = ReturnType<typeof getTextEncoding>;

/**
 * UTF-8 decoding of the contract's string fields that keeps a leading
 * U+FEFF. A WHATWG TextDecoder drops it by default (`ignoreBOM: false`), so
 * the key "\uFEFFuser:1" decoded as "user:1": a Set, Get or Delete of one
 * key reached another, and a tag named the same way hid another tag's
 * values. Protobuf strings are text, not documents with a byte-order mark:
 * other languages' runtimes keep it, and so must we.
 */

const lenientUtf8 = new TextDecoder("utf-8", { ignoreBOM: true });

const decodeUtf8: TextEncoding["decodeUtf8"] = (bytes, strict) => (strict === true ? strictUtf8 : lenientUtf8).decode(bytes);

/**
 * Runs `decode` (a protobuf-es decode, which is synchronous) with a text
 * decoding that keeps a leading U+FEFF, and puts back the one the process
 * had: protobuf-es has one text encoding for the whole process, which the
 * program around us may use or set itself.
 */
export function withByteOrderMarksKept<T>(decode: () => T): T {
  const before = getTextEncoding();
  configureTextEncoding({ encodeUtf8: before.encodeUtf8, checkUtf8: before.checkUtf8, decodeUtf8 });
  try {
    return decode();
  } finally {
    configureTextEncoding(before);
  }
}
