/**
 * The strict UTF-8 decoder of every string tiercache reads from bytes (keys
 * and other string fields on the wire, content types and tags in stored
 * envelopes): it throws on invalid UTF-8 and keeps a leading U+FEFF, which a
 * TextDecoder drops by default (`ignoreBOM: false`), so that bytes and
 * strings round-trip and "\uFEFFuser:1" never reads as "user:1".
 */
export const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
