import { describe, expect, it } from "vitest";
import { IdleBypass } from "../../server/tiers/idle-bypass.js";

describe("IdleBypass", () => {
  it("counts an attempt in flight until it settles, fulfilled or rejected", async () => {
    const bypass = new IdleBypass();
    let finish!: () => void;
    let fail!: (err: Error) => void;
    const first = bypass.track(() => new Promise<void>((resolve) => (finish = resolve)));
    expect(bypass.alone).toBe(true);
    const second = bypass.track(() => new Promise<void>((_, reject) => (fail = reject)));
    expect(bypass.inFlight).toBe(2);
    expect(bypass.alone).toBe(false);
    fail(new Error("boom"));
    await expect(second).rejects.toThrow("boom");
    expect(bypass.inFlight).toBe(1);
    finish();
    await first;
    expect(bypass.inFlight).toBe(0);
  });

  it("does not count an attempt that throws before returning a promise", () => {
    const bypass = new IdleBypass();
    expect(() =>
      bypass.track(() => {
        throw new Error("sync");
      }),
    ).toThrow("sync");
    expect(bypass.inFlight).toBe(0);
  });
});
