/** Bytes of one slab: four times Node's own pool, so that one allocation serves four times as many small buffers. */
export const SLAB_BYTES = 32 * 1024;
/** Buffers of this size or more get memory of their own, as `Buffer.allocUnsafe` gives them from half its pool on. */
export const OWN_MEMORY_BYTES = 4 * 1024;

/**
 * Small uninitialized Buffers carved out of shared slabs, as
 * `Buffer.allocUnsafe` carves them out of its 8 KiB pool, but from larger
 * slabs: allocating an ArrayBuffer costs far more than copying a few hundred
 * bytes, and a larger slab pays for it less often.
 *
 * A carved buffer keeps its whole slab alive (at most {@link SLAB_BYTES}):
 * copy it into memory of its own before keeping it for long. Buffers of
 * {@link OWN_MEMORY_BYTES} or more own their memory.
 */
export class BufferSlab {
  #slab = new ArrayBuffer(0);
  #offset = 0;

  /** `size` bytes, uninitialized: the caller writes every one of them. Throws a RangeError unless `size` is a non-negative integer. */
  take(size: number): Buffer {
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`a buffer size must be a non-negative integer, got ${size}`);
    if (size >= OWN_MEMORY_BYTES) return Buffer.allocUnsafeSlow(size);
    if (size > this.#slab.byteLength - this.#offset) {
      this.#slab = Buffer.allocUnsafeSlow(SLAB_BYTES).buffer as ArrayBuffer;
      this.#offset = 0;
    }
    const carved = Buffer.from(this.#slab, this.#offset, size);
    this.#offset += (size + 7) & ~7;
    return carved;
  }
}
