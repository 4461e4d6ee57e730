import { ValueCodec } from "../../core/codec.js";

const codec = new ValueCodec();

/** The stored envelope of a text value (no TTL), as the tiers hold it. */
export function textEnvelope(value: string): Uint8Array {
  return codec.encode(new TextEncoder().encode(value), "text/plain", 0);
}

/** The text inside a stored envelope; null or undefined as given. */
export function envelopeText(stored: Uint8Array | null | undefined): string | null | undefined {
  return stored ? new TextDecoder().decode(codec.decode(stored).value) : stored;
}
