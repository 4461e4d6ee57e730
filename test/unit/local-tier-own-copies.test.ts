import { describe, expect, it } from "vitest";
import { LocalTier } from "../../client/local-tier.js";
import { fakeClock } from "../helpers/fake-clock.js";

const copy = (value: unknown, freshMs: number) => ({ value, contentType: "application/json", size: 8, freshMs, ttlRemainingMs: freshMs });

describe("LocalTier copies named by their token", () => {
  it("shortens a copy to the server's TTL, and never past maxTtlMs counted from when it was kept", () => {
    const clock = fakeClock(1_000_000);
    const local = new LocalTier({ clock: clock.now, maxTtlMs: 1000 });
    const token = local.set("ns", "k", copy("v", 10_000));
    clock.advance(900);
    expect(local.shorten("ns", "k", token, 5000)).toBe(true); // the server's copy outlives the cap: the cap still ends it at +1000
    clock.advance(99);
    expect(local.value("ns", "k")).toBe("v");
    clock.advance(1);
    expect(local.get("ns", "k")).toBeUndefined();

    const short = local.set("ns", "j", copy("w", 800));
    clock.advance(100);
    expect(local.shorten("ns", "j", short, 300)).toBe(true);
    expect(local.get("ns", "j")?.ttlRemainingMs).toBe(300);
    clock.advance(300);
    expect(local.get("ns", "j")).toBeUndefined();
  });

  it("shortens or keeps only the very copy the token names", () => {
    const clock = fakeClock(1_000_000);
    const local = new LocalTier({ clock: clock.now });
    const first = local.set("ns", "k", copy(42, 60_000));
    const second = local.set("ns", "k", copy(42, 60_000));
    expect(local.shorten("ns", "k", first, 10)).toBe(false);
    expect(local.get("ns", "k")?.ttlRemainingMs).toBe(60_000);
    local.dropUnless("ns", "k", first);
    expect(local.get("ns", "k")).toBeUndefined();
    expect(local.shorten("ns", "k", second, 10)).toBe(false);
    expect(local.shorten("ns", "gone", undefined, 10)).toBe(false);
  });
});
