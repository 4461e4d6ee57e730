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
 * the whole slab. The envelopes that are views are copied together into one
 * buffer of exactly their bytes (one envelope alone gets memory of its own),
 * so a batch costs one allocation and holds no more than itself.
 */
export function withOwnedEnvelopes<W extends { readonly envelope: Uint8Array }>(writes: W[]): W[] {
  let viewBytes = 0;
  let views = 0;
  for (const write of writes) {
    if (ownsItsMemory(write.envelope)) continue;
    viewBytes += write.envelope.byteLength;
    views++;
  }
  if (views === 0) return writes;
  if (views === 1) return writes.map((write) => (ownsItsMemory(write.envelope) ? write : { ...write, envelope: retainable(write.envelope) }));
  const shared = Buffer.allocUnsafeSlow(viewBytes);
  let at = 0;
  return writes.map((write) => {
    if (ownsItsMemory(write.envelope)) return write;
    const length = write.envelope.byteLength;
    shared.set(write.envelope, at);
    const envelope = shared.subarray(at, at + length);
    at += length;
    return { ...write, envelope };
  });
}
