import type { DescMessage } from "@bufbuild/protobuf";

/**
 * A message of type `D` whose binary form a writer that knows it builds
 * directly (see server/rpc/found-entries-message.ts), without the message
 * objects the general codecs encode. Handlers may return or yield one in
 * place of a message; the codecs write its bytes as they are.
 */
export class EncodedMessage<D extends DescMessage = DescMessage> {
  /** The message type, for the compiler only: a message of one type cannot stand for another. */
  declare readonly schema: D;
  /** Its length in bytes. */
  readonly byteLength: number;
  readonly #writeInto: (buf: Buffer) => number;

  /** `writeInto` writes exactly `byteLength` bytes from the start of the buffer it is given and returns how many it wrote. */
  constructor(byteLength: number, writeInto: (buf: Buffer) => number) {
    this.byteLength = byteLength;
    this.#writeInto = writeInto;
  }

  /** Its bytes, written into `allocate(byteLength)`. */
  bytes(allocate: (size: number) => Buffer = Buffer.allocUnsafe): Buffer {
    const buf = allocate(this.byteLength);
    const written = this.#writeInto(buf);
    if (written !== this.byteLength) throw new Error(`an encoded message wrote ${written} bytes of the ${this.byteLength} it announced`);
    return buf;
  }
}
