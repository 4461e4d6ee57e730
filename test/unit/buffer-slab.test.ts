import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BufferSlab, OWN_MEMORY_BYTES, SLAB_BYTES } from "../../core/buffer-slab.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";
import { engineWith } from "../helpers/test-engine.js";

describe("BufferSlab", () => {
  it("gives buffers of the size asked that never overlap, whatever the sizes", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: OWN_MEMORY_BYTES + 64 }), { maxLength: 200 }), (sizes) => {
        const slab = new BufferSlab();
        const taken = sizes.map((size, i) => {
          const buffer = slab.take(size);
          buffer.fill(i & 0xff);
          return buffer;
        });
        taken.forEach((buffer, i) => {
          expect(Buffer.isBuffer(buffer)).toBe(true);
          expect(buffer.byteLength).toBe(sizes[i]);
          expect(buffer.every((byte) => byte === (i & 0xff))).toBe(true);
        });
      }),
    );
  });

  it("carves small buffers from shared slabs, 8-byte aligned, and gives larger ones memory of their own", () => {
    const slab = new BufferSlab();
    const first = slab.take(100);
    const second = slab.take(1);
    const third = slab.take(1);
    expect(first.buffer).toBe(second.buffer);
    expect(first.buffer.byteLength).toBe(SLAB_BYTES);
    expect([first.byteOffset % 8, second.byteOffset - first.byteOffset, third.byteOffset - second.byteOffset]).toEqual([0, 104, 8]);

    expect(slab.take(OWN_MEMORY_BYTES - 1).buffer.byteLength).toBe(SLAB_BYTES);
    const large = slab.take(OWN_MEMORY_BYTES);
    expect([large.byteOffset, large.buffer.byteLength]).toEqual([0, OWN_MEMORY_BYTES]);
  });

  it("refuses a size that is not a non-negative integer, and the next buffer overlaps nothing", () => {
    const slab = new BufferSlab();
    const first = slab.take(100).fill(1);
    for (const size of [-1, -9, 1.5, Number.NaN, Infinity]) expect(() => slab.take(size)).toThrow(RangeError);
    slab.take(8).fill(2);
    expect(first.every((byte) => byte === 1)).toBe(true);
  });

  it("starts a new slab when the next buffer does not fit in what is left", () => {
    const slab = new BufferSlab();
    const size = OWN_MEMORY_BYTES - 1;
    const taken = Array.from({ length: Math.ceil(SLAB_BYTES / size) }, () => slab.take(size));
    const slabs = new Set(taken.map((buffer) => buffer.buffer));
    expect(slabs.size).toBe(2);
    expect(taken.every((buffer) => buffer.byteOffset + buffer.byteLength <= SLAB_BYTES)).toBe(true);
  });
});

describe("envelopes carved from a slab", () => {
  const value = new Uint8Array(512).fill(7);
  const entry = (key: string) => ({ key, value, contentType: "application/octet-stream", ttlMs: 0 });
  const engineOver = (durable: FakeDurableTier | undefined, memoryMaxEntries: number) => engineWith(fakeClock(), durable, { memoryMaxEntries });
  const owns = (bytes: Uint8Array) => bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength;

  it("the engine hands no tier a view into a slab, and the memory tier and a durable tier share what both keep", async () => {
    const clock = fakeClock();
    for (const durable of [undefined, new FakeDurableTier(clock.now)]) {
      const engine = engineOver(durable, 100);
      await engine.set("ns", entry("a"));
      await engine.setMany("ns", [entry("b"), entry("c"), entry("d")]);
      for (const key of ["a", "b", "c", "d"]) {
        const found = await engine.get("ns", key);
        expect(found?.tier).toBe("memory");
        expect(Buffer.from(found!.value).equals(value)).toBe(true);
        expect(found!.value.buffer.byteLength).toBeLessThan(1024);
      }
      // A durable tier may keep what it is given (FakeDurableTier does, as ioredis does until Redis answers): here, the memory tier's own copies.
      for (const envelope of durable?.data.values() ?? []) expect(owns(envelope)).toBe(true);
      expect(durable === undefined || durable.data.size === 4).toBe(true);
    }
  });

  it("a batch longer than the memory tier: what only the durable tier gets shares one buffer of exactly its bytes, what the memory tier keeps owns its memory", async () => {
    const durable = new FakeDurableTier(fakeClock().now);
    const engine = engineOver(durable, 2);
    const keys = ["a", "b", "c", "d", "e"];
    await engine.setMany("ns", keys.map(entry));
    const held = keys.map((key) => durable.data.get(`ns\u0000${key}`)!);
    const [skipped, kept] = [held.slice(0, 3), held.slice(3)];
    expect(skipped.every((envelope) => envelope.buffer === skipped[0]!.buffer)).toBe(true);
    expect(skipped[0]!.buffer.byteLength).toBe(skipped.reduce((sum, envelope) => sum + envelope.byteLength, 0));
    expect(kept.every(owns)).toBe(true);
    for (const key of keys) expect(Buffer.from((await engine.get("ns", key))!.value).equals(value)).toBe(true);
    // Read from the durable tier, "a" was promoted: the memory tier's copy owns its memory, not the batch's buffer.
    expect((await engine.get("ns", "a"))?.tier).toBe("lmdb");
    const promoted = await engine.get("ns", "a");
    expect(promoted?.tier).toBe("memory");
    expect(promoted!.value.buffer.byteLength).toBeLessThan(1024);
  });
});
