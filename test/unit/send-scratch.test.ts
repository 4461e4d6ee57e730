import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { SEND_SCRATCH_ENABLED, SEND_SCRATCH_MAX_BYTES, SEND_SCRATCH_MIN_BYTES, sendBuffer } from "../../core/wire/send-scratch.js";

describe("the shared send buffer", () => {
  it("is used with the installed grpc-js (a new release must be read to copy at once, then added to the list)", () => {
    const { version } = createRequire(import.meta.url)("@grpc/grpc-js/package.json") as { version: string };
    expect(SEND_SCRATCH_ENABLED, `grpc-js ${version}`).toBe(true);
  });

  it("serves sizes from 64 KiB to 16 MiB from one buffer, and others from fresh ones", () => {
    const a = sendBuffer(SEND_SCRATCH_MIN_BYTES); // the first use in this file's process: exactly 64 KiB
    const b = sendBuffer(SEND_SCRATCH_MIN_BYTES + 10);
    expect(b.buffer).not.toBe(a.buffer); // grown, to the next multiple of 64 KiB
    const c = sendBuffer(SEND_SCRATCH_MIN_BYTES + 5);
    expect(c.buffer).toBe(b.buffer);
    expect(c.byteLength).toBe(SEND_SCRATCH_MIN_BYTES + 5);
    expect(sendBuffer(SEND_SCRATCH_MIN_BYTES - 1).buffer).not.toBe(c.buffer);
    expect(sendBuffer(SEND_SCRATCH_MAX_BYTES + 1).byteLength).toBe(SEND_SCRATCH_MAX_BYTES + 1);
    expect(c.buffer.byteLength % SEND_SCRATCH_MIN_BYTES).toBe(0);
  });
});
