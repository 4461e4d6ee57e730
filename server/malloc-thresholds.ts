/**
 * Size of the buffer {@link raiseMallocThresholds} allocates and drops, so
 * the size up to which large buffers then come from the heap: as large as
 * the default largest gRPC message (16 MiB). Kept a literal rather than that
 * default because glibc only raises its threshold for blocks up to 32 MiB.
 */
export const MALLOC_WARMUP_BYTES = 16 * 1024 * 1024;

let raised = false;

/**
 * Makes glibc's malloc keep the memory of large response buffers for reuse
 * instead of handing it back to the kernel after every batch.
 *
 * grpc-js allocates a fresh buffer for every response message it sends, and
 * Node takes buffers over 4 KiB from malloc. By default glibc serves a
 * request over 128 KiB with mmap, and after the first such block is freed it
 * serves requests up to that block's size from its heap, but gives the heap's
 * free top back to the kernel once it exceeds twice that size. A StreamGet
 * batch of 500 values of 1 KiB frees two 0.5 MiB buffers at a time, so the
 * heap shrank and grew again on every call, and every page of every response
 * was a fresh, zeroed page fault: this cost the server more CPU than
 * finding, encoding and sending the values (bench/README.md, issue 13).
 *
 * mallopt(3) documents the dynamic thresholds: freeing a block that was
 * mmapped raises the mmap threshold to its size and the trim threshold to
 * twice that, up to 32 MiB on 64-bit. So this allocates one uninitialized
 * block of {@link MALLOC_WARMUP_BYTES} (untouched: it costs no page) and
 * drops it. Once a garbage collection frees it (the first one after start:
 * an idle server may not run one for a while, a loaded one soon does),
 * blocks up to 16 MiB come from the heap and the heap's free top is kept up
 * to 32 MiB. The cost: freed memory stays with the process for reuse, so
 * after a burst of large calls its RSS can stay near the burst's peak (the
 * default returns mmapped blocks at once).
 *
 * It changes nothing when the allocator is not glibc's, nor when
 * `GLIBC_TUNABLES` (or `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`…)
 * sets the mmap or trim threshold, the top pad or the mmap maximum: glibc
 * then keeps its thresholds fixed, which is how an operator opts out. Runs
 * once per process.
 */
export function raiseMallocThresholds(): void {
  if (raised) return;
  raised = true;
  Buffer.allocUnsafeSlow(MALLOC_WARMUP_BYTES);
}

/** Whether {@link raiseMallocThresholds} ran in this process (startServer runs it). */
export function mallocThresholdsRaised(): boolean {
  return raised;
}
