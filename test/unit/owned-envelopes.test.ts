import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BufferSlab } from "../../core/buffer-slab.js";
import { retainable, withOwnedEnvelopes } from "../../server/engine/owned-envelopes.js";

const owns = (bytes: Uint8Array) => bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength;

describe("envelopes that own their memory", () => {
  it("retainable copies a view and keeps what already owns its memory", () => {
    const slab = new BufferSlab();
    const view = slab.take(40).fill(5);
    const copy = retainable(view);
    expect(owns(copy)).toBe(true);
    expect(Buffer.from(copy).equals(view)).toBe(true);
    const own = Buffer.allocUnsafeSlow(10);
    expect(retainable(own)).toBe(own);
  });

  it("views no tier but the durable one keeps share one buffer of exactly their bytes; kept views and a lone one get their own; owned envelopes are left as they are", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ size: fc.integer({ min: 0, max: 6000 }), owned: fc.boolean() }), { maxLength: 30 }), fc.nat(35), (specs, keptFrom) => {
        const slab = new BufferSlab();
        const writes = specs.map(({ size, owned }, i) => ({
          key: `k${i}`,
          envelope: (owned ? Buffer.allocUnsafeSlow(size) : slab.take(size)).fill(i & 0xff),
        }));
        const before = writes.map((write) => Buffer.from(write.envelope));
        const out = withOwnedEnvelopes(writes, keptFrom);
        const sharedViews = writes.filter((write, i) => i < keptFrom && !owns(write.envelope));
        const sharedBytes = sharedViews.reduce((sum, write) => sum + write.envelope.byteLength, 0);
        out.forEach((write, i) => {
          expect(write.key).toBe(`k${i}`);
          expect(Buffer.from(write.envelope).equals(before[i]!)).toBe(true);
          if (owns(writes[i]!.envelope)) expect(write).toBe(writes[i]);
          else if (i >= keptFrom || sharedViews.length === 1) expect(owns(write.envelope)).toBe(true);
          else expect(write.envelope.buffer.byteLength).toBe(sharedBytes);
        });
        const sharedBuffers = new Set(out.filter((write, i) => i < keptFrom && !owns(writes[i]!.envelope)).map((write) => write.envelope.buffer));
        expect(sharedBuffers.size).toBe(Math.min(1, sharedViews.length));
      }),
    );
  });
});
