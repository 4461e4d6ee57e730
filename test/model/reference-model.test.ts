import { describe, expect, it } from "vitest";
import { fakeClock } from "../helpers/fake-clock.js";
import { InvalidArgument, ReferenceCache } from "./reference-model.js";
import { MAX_TTL_MS } from "./rules.js";

/** The model on its own: the rules of the README's "Semantics", one example each. */
describe("reference model", () => {
  const setup = () => {
    const clock = fakeClock(1_000_000);
    return { clock, cache: new ReferenceCache({ maxKeyBytes: 8, now: clock.now }) };
  };

  it("a value with ttl T and grace G is fresh before t0+T, stale until t0+T+G, then gone", () => {
    const { clock, cache } = setup();
    expect(cache.wrap("", "k", "v", { ttl: 100, grace: 50 })).toEqual({ value: "v", loader: "called" });
    clock.advance(99);
    expect(cache.getEntry("", "k")).toEqual({ value: "v", ttlRemainingMs: 1 });
    clock.advance(1);
    expect(cache.lookup("", "k").state).toBe("stale");
    expect([cache.get("", "k"), cache.has("", "k"), cache.getEntry("", "k")]).toEqual([undefined, false, undefined]);
    expect(cache.getMany("", ["k"]).size).toBe(0);
    expect([...cache.streamGet("", ["k", "k"])]).toEqual([["k", undefined]]);
    clock.advance(49);
    expect(cache.lookup("", "k").state).toBe("stale");
    clock.advance(1);
    expect(cache.lookup("", "k").state).toBe("absent");
  });

  it("ttl 0 never expires and ignores grace; a fractional ttl is rounded up", () => {
    const { clock, cache } = setup();
    cache.wrap("", "forever", 1, { ttl: 0, grace: 10 });
    cache.set("", "frac", 2, 10.2);
    clock.advance(10);
    expect(cache.getEntry("", "forever")).toEqual({ value: 1, ttlRemainingMs: 0 });
    expect(cache.getEntry("", "frac")).toEqual({ value: 2, ttlRemainingMs: 1 });
    clock.advance(1);
    expect(cache.has("", "frac")).toBe(false);
    clock.advance(MAX_TTL_MS);
    expect(cache.has("", "forever")).toBe(true);
  });

  it("wrap: fresh → not called; stale → the stale value, refreshed; past grace → called", () => {
    const { clock, cache } = setup();
    cache.wrap("", "k", "v1", { ttl: 10, grace: 10 });
    expect(cache.wrap("", "k", "other", { ttl: 10, grace: 10 })).toEqual({ value: "v1", loader: "not-called" });
    clock.advance(10);
    expect(cache.wrap("", "k", "v2", { ttl: 10, grace: 10 })).toEqual({ value: "v1", loader: "refresh" });
    expect(cache.getEntry("", "k")).toEqual({ value: "v2", ttlRemainingMs: 10 });
    clock.advance(20);
    expect(cache.wrap("", "k", "v3", { ttl: 10 })).toEqual({ value: "v3", loader: "called" });
  });

  it("wrap with eagerRefresh: a fresh value near its end is returned and refreshed once", () => {
    const { clock, cache } = setup();
    cache.wrap("", "k", "v1", { ttl: 100, eagerRefresh: 0.8 });
    clock.advance(79);
    expect(cache.wrap("", "k", "v2", { ttl: 100, eagerRefresh: 0.8 })).toEqual({ value: "v1", loader: "not-called" });
    clock.advance(1);
    expect(cache.wrap("", "k", "v2", { ttl: 100, eagerRefresh: 0.8 })).toEqual({ value: "v1", loader: "refresh" });
    expect(cache.getEntry("", "k")).toEqual({ value: "v2", ttlRemainingMs: 100 });
    expect(cache.wrap("", "k", "v3", { ttl: 100, eagerRefresh: 0.8 })).toEqual({ value: "v2", loader: "not-called" });
  });

  it("wrap with a loader context: its ttl and grace replace the options; skip returns the value uncached", () => {
    const { clock, cache } = setup();
    expect(cache.wrap("", "k", "v", { ttl: 100, loaderContext: { ttl: 10 } })).toEqual({ value: "v", loader: "called" });
    expect(cache.getEntry("", "k")).toEqual({ value: "v", ttlRemainingMs: 10 });
    clock.advance(10);
    expect(cache.lookup("", "k").state).toBe("absent");
    expect(cache.wrap("", "s", "v", { ttl: 100, loaderContext: { skip: true } })).toEqual({ value: "v", loader: "called" });
    expect(cache.lookup("", "s").state).toBe("absent");
  });

  it("touch renews a fresh value only and drops its grace; delete counts fresh values and removes stale ones", () => {
    const { clock, cache } = setup();
    cache.wrap("", "a", "x", { ttl: 10, grace: 100 });
    cache.wrap("", "b", "y", { ttl: 10, grace: 100 });
    expect(cache.touch("", "a", 30)).toBe(true);
    clock.advance(30);
    expect(cache.lookup("", "a").state).toBe("absent");
    expect(cache.lookup("", "b").state).toBe("stale");
    expect(cache.touch("", "b", 30)).toBe(false);
    expect(cache.lookup("", "b").state).toBe("stale");
    expect(cache.delete("", "b")).toBe(false);
    expect(cache.lookup("", "b").state).toBe("absent");
    cache.setMany("", [["c", 1], ["d", 2], ["c", 3]]);
    expect(cache.get("", "c")).toBe(3);
    expect(cache.deleteMany("", ["c", "c", "d", "zz"])).toBe(2);
  });

  it('namespaces: "" is "default", others are isolated, clear empties one', () => {
    const { cache } = setup();
    cache.set("", "k", "d");
    cache.set("alpha", "k", "a");
    expect(cache.get("default", "k")).toBe("d");
    cache.clear("default");
    expect([cache.get("", "k"), cache.get("alpha", "k")]).toEqual([undefined, "a"]);
  });

  it("refuses bad namespaces, keys and TTLs without changing anything", () => {
    const { cache } = setup();
    cache.set("", "k", "kept");
    const refused = [
      () => cache.set("-x", "k", 1),
      () => cache.set("a".repeat(65), "k", 1),
      () => cache.set("", "", 1),
      () => cache.set("", "\ud800", 1),
      () => cache.set("", "ééééa", 1), // 9 UTF-8 bytes, over 8
      () => cache.set("", "k", 1, -1),
      () => cache.set("", "k", 1, NaN),
      () => cache.set("", "k", 1, Infinity),
      () => cache.set("", "k", 1, MAX_TTL_MS + 0.5),
      () => cache.setMany("", [["k", 1], ["", 2]]),
      () => cache.wrap("", "k", 1, { ttl: 10, grace: -1 }),
      () => cache.touch("", "k", NaN),
    ];
    for (const call of refused) expect(call).toThrow(InvalidArgument);
    expect(cache.getEntry("", "k")).toEqual({ value: "kept", ttlRemainingMs: 0 });
    expect(() => cache.set("", "éééé", 1)).not.toThrow(); // exactly 8 bytes
    expect(() => cache.set("", "😀😀", 1)).not.toThrow();
  });

  it("compares keys exactly: control characters, astral characters and long shared prefixes", () => {
    const clock = fakeClock();
    const cache = new ReferenceCache({ maxKeyBytes: 1024, now: clock.now });
    const prefix = "p".repeat(64);
    const keys = [prefix, `${prefix}\u0000`, `${prefix}\u0001`, "\u0000", "😀", "\ud83d\ude00\u0000"];
    keys.forEach((key, i) => cache.set("", key, i));
    expect(keys.map((key) => cache.get("", key))).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
