import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { envelopeTimes, freshness } from "../../core/envelope.js";
import type { DurableTier, DurableWrite } from "../../server/engine/durable-tier.js";
import { fakeClock, type FakeClock } from "../helpers/fake-clock.js";

/** What a tier under test needs: the tier, built on the given clock, and how to dispose of it. */
export interface TierUnderTest {
  tier: DurableTier;
  dispose(): Promise<void>;
}

const codec = new ValueCodec();
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(codec.decode(b).value));

/**
 * The behaviour every durable tier shares (STYLE.md item 7): run it against
 * the LMDB store, Redis standalone and Redis Cluster alike.
 */
export function describeDurableTier(name: string, open: (clock: FakeClock) => Promise<TierUnderTest>): void {
  describe(`durable tier conformance: ${name}`, () => {
    const clock = fakeClock(Date.now());
    let t: TierUnderTest;
    let ns = "";
    let n = 0;
    const write = (key: string, value: string, ttlMs = 0, graceMs = 0): DurableWrite => {
      const freshUntil = ttlMs === 0 ? 0 : clock.now() + ttlMs;
      const expiresAt = freshUntil === 0 ? 0 : freshUntil + graceMs;
      return { key, envelope: codec.encode(new TextEncoder().encode(value), "text/plain", expiresAt, graceMs === 0 ? 0 : freshUntil), expiresAt };
    };

    beforeAll(async () => {
      t = await open(clock);
    });
    afterAll(async () => {
      await t?.dispose();
    });
    beforeEach(() => {
      ns = `conf${++n}-${Date.now()}`;
    });

    it("stores, reads, overwrites and deletes", async () => {
      const { tier } = t;
      expect(await tier.get(ns, "k")).toBeUndefined();
      await tier.set(ns, write("k", "v1"));
      expect(text(await tier.get(ns, "k"))).toBe("v1");
      await tier.set(ns, write("k", "v2"));
      expect(text(await tier.get(ns, "k"))).toBe("v2");
      expect(await tier.has(ns, "k")).toBe(true);
      expect(await tier.delete(ns, "k")).toBe(true);
      expect(await tier.delete(ns, "k")).toBe(false);
      expect(await tier.get(ns, "k")).toBeUndefined();
      expect(await tier.has(ns, "k")).toBe(false);
    });

    it("returns envelopes byte for byte", async () => {
      const big = write("big", "x".repeat(200_000));
      await t.tier.set(ns, big);
      expect(Buffer.compare(Buffer.from((await t.tier.get(ns, "big"))!), Buffer.from(big.envelope))).toBe(0);
    });

    it("handles batches in order, with misses in place", async () => {
      const { tier } = t;
      await tier.setMany(ns, [write("a", "1"), write("b", "2"), write("c", "3")]);
      expect((await tier.getMany(ns, ["c", "zz", "a"])).map(text)).toEqual(["3", undefined, "1"]);
      expect(await tier.deleteMany(ns, ["a", "b", "zz"])).toBe(2);
      expect((await tier.getMany(ns, ["a", "b", "c"])).map(text)).toEqual([undefined, undefined, "3"]);
    });

    it("accepts any UTF-8 key, including separators and control characters", async () => {
      const keys = ["with:colon", "with space", "{braces}", "emoji-🎉", "tab\tnewline\n", "\u0000nul", "ns-like:conf1:k"];
      await t.tier.setMany(ns, keys.map((k) => write(k, `v-${k}`)));
      expect((await t.tier.getMany(ns, keys)).map(text)).toEqual(keys.map((k) => `v-${k}`));
    });

    it("keeps apart keys that differ only past 64 characters, or only in how U+0000–U+0004 would be escaped", async () => {
      const long = "p".repeat(64);
      const keys = [
        "\u0000".repeat(32),
        "\u0004\u0000".repeat(32),
        "\u001b\u0004\u0000".repeat(22),
        `${long}\u0000`,
        `${long}\u0000\u0000`,
        `${long}\u0000\u0001`,
        `${long}\u0004\u0000`,
        `${long}\u0001`,
        `${long}😀\u0000`,
        long,
      ];
      await t.tier.setMany(ns, keys.map((k, i) => write(k, `v${i}`)));
      expect((await t.tier.getMany(ns, keys)).map(text)).toEqual(keys.map((_, i) => `v${i}`));
      expect(await t.tier.delete(ns, keys[1]!)).toBe(true);
      expect(await t.tier.deleteMany(ns, [keys[4]!, keys[9]!])).toBe(2);
      expect((await t.tier.getMany(ns, keys)).map(text)).toEqual(keys.map((_, i) => ([1, 4, 9].includes(i) ? undefined : `v${i}`)));
      await t.tier.clear(ns);
      expect((await t.tier.getMany(ns, keys)).every((v) => v === undefined)).toBe(true);
    });

    it("stores a key of 1024 bytes of four-byte characters in a 64-character namespace, with a TTL", async () => {
      const longest = ns.padEnd(64, "x");
      const key = "😀".repeat(256);
      await t.tier.set(longest, write(key, "v", 1_000));
      expect(text(await t.tier.get(longest, key))).toBe("v");
      expect(text(await t.tier.get(longest, "😀".repeat(255)))).toBeUndefined();
      clock.advance(1_000);
      expect(await t.tier.get(longest, key)).toBeUndefined();
      await t.tier.clear(longest);
    });

    it("never returns an expired value, and touch moves the expiry", async () => {
      const { tier } = t;
      await tier.setMany(ns, [write("short", "s", 1_000), write("long", "l", 60_000), write("never", "n")]);
      clock.advance(999);
      expect(text(await tier.get(ns, "short"))).toBe("s");
      clock.advance(1);
      expect(await tier.get(ns, "short")).toBeUndefined();
      expect(await tier.has(ns, "short")).toBe(false);
      expect((await tier.getMany(ns, ["short", "long", "never"])).map(text)).toEqual([undefined, "l", "n"]);
      expect(await tier.touch(ns, "short", clock.now() + 5_000)).toBe(false);
      expect(await tier.touch(ns, "long", clock.now() + 5_000)).toBe(true);
      expect(ValueCodec.expiresAt((await tier.get(ns, "long"))!)).toBe(clock.now() + 5_000);
      clock.advance(5_000);
      expect(await tier.get(ns, "long")).toBeUndefined();
      expect(text(await tier.get(ns, "never"))).toBe("n");
    });

    it("an overwrite replaces the TTL", async () => {
      await t.tier.set(ns, write("k", "ttl", 1_000));
      await t.tier.set(ns, write("k", "no-ttl"));
      clock.advance(2_000);
      expect(text(await t.tier.get(ns, "k"))).toBe("no-ttl");
    });

    it("isolates namespaces, and clear empties only its own", async () => {
      const { tier } = t;
      const others = [`${ns}x`, `${ns}.b`, `${ns}-`, `x${ns}`];
      await tier.setMany(ns, [write("k", "mine"), write("j", "mine too")]);
      for (const other of others) await tier.set(other, write("k", other));
      expect(text(await tier.get(ns, "k"))).toBe("mine");
      await tier.clear(ns);
      expect(await tier.getMany(ns, ["k", "j"])).toEqual([undefined, undefined]);
      for (const other of others) expect(text(await tier.get(other, "k"))).toBe(other);
      for (const other of others) await tier.clear(other);
    });

    it("clears a namespace larger than one internal batch", async () => {
      const writes = Array.from({ length: 2_500 }, (_, i) => write(`k${i}`, `${i}`));
      for (let i = 0; i < writes.length; i += 500) await t.tier.setMany(ns, writes.slice(i, i + 500));
      await t.tier.clear(ns);
      expect((await t.tier.getMany(ns, ["k0", "k1234", "k2499"])).every((v) => v === undefined)).toBe(true);
    });

    it("a stale value (within grace) is returned by get, but is absent for has, touch and delete's count", async () => {
      const { tier } = t;
      await tier.set(ns, write("g", "graced", 1_000, 5_000));
      await tier.set(ns, write("h", "graced", 1_000, 5_000));
      clock.advance(2_000);
      expect(text(await tier.get(ns, "g"))).toBe("graced");
      expect(await tier.has(ns, "g")).toBe(false);
      expect(await tier.touch(ns, "g", clock.now() + 60_000)).toBe(false);
      expect(freshness((await tier.get(ns, "g"))!, clock.now())).toBe("stale");
      expect(await tier.delete(ns, "h")).toBe(false);
      expect(await tier.get(ns, "h")).toBeUndefined();
      expect(await tier.deleteMany(ns, ["g", "g"])).toBe(0);
      expect(await tier.get(ns, "g")).toBeUndefined();
    });

    it("touch of a value with grace ends its grace: fresh until the new expiry, then gone", async () => {
      const { tier } = t;
      await tier.set(ns, write("g", "graced", 1_000, 60_000));
      expect(await tier.touch(ns, "g", clock.now() + 5_000)).toBe(true);
      const touched = (await tier.get(ns, "g"))!;
      expect(envelopeTimes(touched)).toEqual({ expiresAt: clock.now() + 5_000, freshUntil: clock.now() + 5_000 });
      expect(codec.decode(touched).freshUntil).toBe(clock.now() + 5_000);
      clock.advance(5_001);
      expect(await tier.get(ns, "g")).toBeUndefined();
      expect(await tier.has(ns, "g")).toBe(false);
    });

    it("keeps tag epochs per namespace: one counter, bumped by every invalidation, that clear leaves alone", async () => {
      const { tier } = t;
      expect(await tier.tagEpochs(ns, ["a", "b"])).toEqual({ counter: 0, epochs: [0, 0] });
      expect(await tier.invalidateTags(ns, ["a"])).toBe(1);
      expect(await tier.invalidateTags(ns, ["b", "c"])).toBe(2);
      await tier.clear(ns);
      expect(await tier.tagEpochs(ns, ["a", "b", "c", "d"])).toEqual({ counter: 2, epochs: [1, 2, 2, 0] });
      expect(await tier.tagEpochs(`${ns}-other`, ["a"])).toEqual({ counter: 0, epochs: [0] });
      expect(await tier.invalidateTags(ns, ["a"])).toBe(3);
      expect(await tier.tagEpochs(ns, ["a", "\u{1F600}:x"])).toEqual({ counter: 3, epochs: [3, 0] });
    });

    it("carries tags in the envelope without touching them", async () => {
      const tagged = codec.encode(new TextEncoder().encode("v"), "text/plain", 0, 0, { epoch: 7, tags: ["user:1", "org:7"] });
      await t.tier.set(ns, { key: "k", envelope: tagged, expiresAt: 0 });
      expect(codec.decode((await t.tier.get(ns, "k"))!).tags).toEqual({ epoch: 7, tags: ["user:1", "org:7"] });
      expect(await t.tier.touch(ns, "k", clock.now() + 5_000)).toBe(true);
      expect(codec.decode((await t.tier.get(ns, "k"))!).tags).toEqual({ epoch: 7, tags: ["user:1", "org:7"] });
    });
  });
}
