/** Bytes a non-negative integer below 2^53 takes as a varint. */
export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 5;
  for (let rest = Math.floor(n / 0x800000000); rest > 0; rest = Math.floor(rest / 0x80)) size++;
  return size;
}

/** Writes a non-negative integer below 2^53 as a varint at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n > 0x7f) {
    buf[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[pos++] = n;
  return pos;
}

/** Bytes the 64-bit two's complement of `n` takes as a varint. */
export function bigVarintSize(n: bigint): number {
  let rest = BigInt.asUintN(64, n);
  let size = 1;
  while (rest > 0x7fn) {
    rest >>= 7n;
    size++;
  }
  return size;
}

/** Writes the 64-bit two's complement of `n` as a varint at `pos`; returns the position after it. */
export function writeBigVarint(buf: Uint8Array, pos: number, n: bigint): number {
  let rest = BigInt.asUintN(64, n);
  while (rest > 0x7fn) {
    buf[pos++] = Number(rest & 0x7fn) | 0x80;
    rest >>= 7n;
  }
  buf[pos++] = Number(rest);
  return pos;
}
