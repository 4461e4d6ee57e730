/** Writing strings into wire buffers as UTF-8, fast for the short ASCII strings keys and content types mostly are. */

/** Node's unchecked Buffer method behind `write` (present since Node 0.x), or the checked one. */
interface FastBufferMethods {
  utf8Write?: (this: Buffer, text: string, offset: number, length: number) => number;
}
const fast = Buffer.prototype as unknown as FastBufferMethods;
const utf8Write: (buf: Buffer, text: string, offset: number, length: number) => number = fast.utf8Write
  ? (buf, text, offset, length) => fast.utf8Write!.call(buf, text, offset, length)
  : (buf, text, offset, length) => buf.write(text, offset, length, "utf8");

/** UTF-8 bytes of `text`: counted in JS for short strings, where a native call costs more than the count. */
export function utf8Length(text: string): number {
  const length = text.length;
  if (length > 64) return Buffer.byteLength(text);
  for (let i = 0; i < length; i++) if (text.charCodeAt(i) > 0x7f) return Buffer.byteLength(text);
  return length;
}

/** Writes `text` of `n` UTF-8 bytes at `pos`: byte by byte when it is short ASCII. */
export function writeText(buf: Buffer, pos: number, text: string, n: number): number {
  if (n === text.length && n <= 64) {
    for (let i = 0; i < n; i++) buf[pos + i] = text.charCodeAt(i);
    return pos + n;
  }
  return pos + utf8Write(buf, text, pos, n);
}
