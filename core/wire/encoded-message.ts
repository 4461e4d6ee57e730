import type { DescMessage } from "@bufbuild/protobuf";

const ENCODED_MESSAGE = Symbol.for("tiercache.EncodedMessage");

/**
 * A message of type `D` whose binary form a writer that knows it builds
 * directly (see server/rpc/found-entries-message.ts), without the message
 * objects the general codecs encode. Streaming handlers may yield one in
 * place of a message; the codecs write its bytes as they are.
 */
export class EncodedMessage<D extends DescMessage = DescMessage> {
  /**
   * Whether `value` is an encoded message, from this copy of the module or
   * from another one loaded in the same process (checked by a registered
   * symbol, not by class: a message another copy made must not be taken for
   * an init shape and sent as an empty message).
   */
  static is(value: unknown): value is EncodedMessage {
    return typeof value === "object" && value !== null && (value as { [ENCODED_MESSAGE]?: unknown })[ENCODED_MESSAGE] === true;
  }

  /** Marks the instances of every copy of this class alike (see {@link EncodedMessage.is}). */
  readonly [ENCODED_MESSAGE] = true;
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
