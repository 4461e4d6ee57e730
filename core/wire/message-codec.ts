import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { compiledCodec } from "./compiled-codec.js";
import { EncodedMessage } from "./encoded-message.js";
import { sendBuffer } from "./send-scratch.js";
import { withByteOrderMarksKept } from "./utf8-text.js";

/** Encodes and decodes one message type: the compiled codec where it applies, protobuf-es otherwise. */
export interface MessageCodec<D extends DescMessage> {
  /** The binary form of a message or of its init shape (as `create` takes it), or the bytes of an {@link EncodedMessage}. */
  encode(message: MessageInitShape<D> | MessageShape<D> | EncodedMessage<D>): Buffer;
  /**
   * Like `encode`, into the shared send scratch when the message is large
   * (see send-scratch.ts): the result is valid only until the next call, for
   * grpc-js's server, which copies it at once.
   */
  encodeToSend(message: MessageInitShape<D> | MessageShape<D> | EncodedMessage<D>): Buffer;
  /** Decodes `bytes`; throws protobuf-es's error on malformed input. */
  decode(bytes: Uint8Array): MessageShape<D>;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const codecs = new WeakMap<DescMessage, MessageCodec<DescMessage>>();

/** The codec of `schema` (made once per schema). */
export function messageCodec<D extends DescMessage>(schema: D): MessageCodec<D> {
  let codec = codecs.get(schema) as MessageCodec<D> | undefined;
  if (!codec) {
    const fast = compiledCodec(schema);
    const slowEncode = (message: MessageInitShape<D> | MessageShape<D>) => asBuffer(toBinary(schema, create(schema, message as MessageInitShape<D>)));
    const slowDecode = (bytes: Uint8Array) => withByteOrderMarksKept(() => fromBinary(schema, bytes));
    const encodeWith = (message: MessageInitShape<D> | MessageShape<D> | EncodedMessage<D>, allocate: (size: number) => Buffer): Buffer => {
      if (EncodedMessage.is(message)) return message.bytes(allocate);
      return (fast?.encode(message, allocate) as Buffer | undefined) ?? slowEncode(message);
    };
    codec = {
      encode: (message) => encodeWith(message, Buffer.allocUnsafe),
      encodeToSend: (message) => encodeWith(message, sendBuffer),
      decode: fast ? (bytes) => fast.decode(bytes) ?? slowDecode(bytes) : slowDecode,
    };
    codecs.set(schema, codec as unknown as MessageCodec<DescMessage>);
  }
  return codec;
}
