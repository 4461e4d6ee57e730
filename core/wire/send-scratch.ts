import { createRequire } from "node:module";

/**
 * One buffer, reused, for the server's serialized responses. grpc-js's server
 * copies what a method's `responseSerialize` returns into its own framed
 * buffer before anything else runs (server-interceptors.js
 * `serializeMessage`), so a large response can be written into the same
 * memory every time instead of into a fresh allocation: fresh buffers of
 * hundreds of KiB cost page faults and garbage collections (a StreamGet
 * batch of 500 KiB values spent more time in them than in copying). Only
 * sizes from {@link SEND_SCRATCH_MIN_BYTES} to {@link SEND_SCRATCH_MAX_BYTES}
 * use it, so the process holds one buffer of the largest such response
 * (rounded up to 64 KiB), at most 16 MiB.
 * It is used only with the grpc-js releases that were read to do so
 * ({@link SEND_SCRATCH_ENABLED}); test/integration/send-scratch.test.ts fails
 * if grpc-js keeps the serialized buffer past that call, and
 * test/unit/send-scratch.test.ts when the installed grpc-js is not one of them.
 */
export const SEND_SCRATCH_MIN_BYTES = 64 * 1024;
/** Responses above this size get a buffer of their own. */
export const SEND_SCRATCH_MAX_BYTES = 16 * 1024 * 1024;

/** The grpc-js releases whose server was read to copy at once; with any other, every response gets a buffer of its own. */
const COPYING_GRPC_JS = /^1\.14\.[3-7]$/;

/** Whether the installed grpc-js is one of those, so that the shared buffer is used. */
export const SEND_SCRATCH_ENABLED = COPYING_GRPC_JS.test(grpcJsVersion());

function grpcJsVersion(): string {
  try {
    return (createRequire(import.meta.url)("@grpc/grpc-js/package.json") as { version?: unknown }).version as string;
  } catch {
    return "";
  }
}

let scratch: Buffer | undefined;

/** A buffer of `size` bytes: the shared scratch for sizes it covers, else a fresh one. */
export function sendBuffer(size: number): Buffer {
  if (!SEND_SCRATCH_ENABLED || size < SEND_SCRATCH_MIN_BYTES || size > SEND_SCRATCH_MAX_BYTES) return Buffer.allocUnsafe(size);
  if (scratch === undefined || scratch.byteLength < size) scratch = Buffer.allocUnsafeSlow(Math.ceil(size / SEND_SCRATCH_MIN_BYTES) * SEND_SCRATCH_MIN_BYTES);
  return scratch.subarray(0, size);
}
