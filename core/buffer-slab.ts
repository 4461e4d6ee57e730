/** Bytes of one slab: four times Node's own pool, so that one allocation serves four times as many small buffers. */
export const SLAB_BYTES = 32 * 1024;
/** Larger buffers get memory of their own, as `Buffer.allocUnsafe` gives them past half its pool. */
export const MAX_CARVED_BYTES = 4 * 1024;

/**
 * Small uninitialized Buffers carved out of shared slabs, as
 * `Buffer.allocUnsafe` carves them out of its 8 KiB pool, but from larger
 * slabs: allocating an ArrayBuffer costs far more than copying a few hundred
 * bytes, and a larger slab pays for it less often.
 *
 * A carved buffer keeps its whole slab alive (at most {@link SLAB_BYTES}):
 * copy it into memory of its own before keeping it for long. Buffers of more
 * than {@link MAX_CARVED_BYTES} own their memory.
 */
export class BufferSlab {
  #slab = new ArrayBuffer(0);
  #offset = 0;

  /** `size` bytes, uninitialized: the caller writes every one of them. */
  take(size: number): Buffer {
    if (size > MAX_CARVED_BYTES) return Buffer.allocUnsafeSlow(size);
    if (size > this.#slab.byteLength - this.#offset) {
      this.#slab = Buffer.allocUnsafeSlow(SLAB_BYTES).buffer as ArrayBuffer;
      this.#offset = 0;
    }
    const carved = Buffer.from(this.#slab, this.#offset, size);
    this.#offset += (size + 7) & ~7;
    return carved;
  }
}
