/** Whether `bytes` is all of its buffer, so that holding it holds nothing else. */
function ownsItsMemory(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength;
}

/**
 * A copy of `envelope` that owns exactly its bytes, unless it already does:
 * a view into a larger buffer (a slab or pooled allocation, a network read)
 * would keep all of that buffer alive for as long as the entry is held.
 */
export function retainable(envelope: Uint8Array): Uint8Array {
  if (ownsItsMemory(envelope)) return envelope;
  const copy = Buffer.allocUnsafeSlow(envelope.byteLength);
  copy.set(envelope);
  return copy;
}

/**
 * `writes` with envelopes that share memory with nothing outside the batch:
 * a durable tier may keep what it is given until its write is answered
 * (ioredis does, while Redis is silent), and a view into a slab would keep
 * the whole slab. From `keptFrom` on, the memory tier will keep the writes:
 * each gets memory of its own, which both tiers then share. The views before
 * it, which only the durable tier sees, are copied together into one buffer
 * of exactly their bytes (one alone gets memory of its own), so that the
 * writes no tier keeps cost one allocation and hold no more than themselves.
 */
export function withOwnedEnvelopes<W extends { readonly envelope: Uint8Array }>(writes: W[], keptFrom = 0): W[] {
  let sharedBytes = 0;
  let shared = 0;
  for (let i = 0; i < keptFrom && i < writes.length; i++) {
    const { envelope } = writes[i]!;
    if (ownsItsMemory(envelope)) continue;
    sharedBytes += envelope.byteLength;
    shared++;
  }
  const together = shared > 1 ? Buffer.allocUnsafeSlow(sharedBytes) : undefined;
  let at = 0;
  return writes.map((write, i) => {
    if (ownsItsMemory(write.envelope)) return write;
    if (together === undefined || i >= keptFrom) return { ...write, envelope: retainable(write.envelope) };
    const length = write.envelope.byteLength;
    together.set(write.envelope, at);
    const envelope = together.subarray(at, at + length);
    at += length;
    return { ...write, envelope };
  });
}
