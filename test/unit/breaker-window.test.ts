import { afterEach, describe, expect, it, vi } from "vitest";
import { BreakerWindow } from "../../server/tiers/breaker-window.js";

afterEach(() => {
  vi.useRealTimers();
});

/** A window of `windowMs` and a count of the bucket turns it asks for. */
function counted(windowMs: number): { window: BreakerWindow; turns: () => number } {
  const window = new BreakerWindow(windowMs);
  let turns = 0;
  window.controller.on("rotate", () => turns++);
  return { window, turns: () => turns };
}

describe("BreakerWindow", () => {
  it("turns one bucket every window/buckets ms, as opossum's own timer does", () => {
    vi.useFakeTimers();
    const { window, turns } = counted(10_000);
    vi.advanceTimersByTime(999);
    expect(turns()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(turns()).toBe(1);
    vi.advanceTimersByTime(9_000);
    expect(turns()).toBe(10);
    window.stop();
  });

  it("empties every bucket at once on clear, and counts the clears as epochs", () => {
    vi.useFakeTimers();
    const { window, turns } = counted(10_000);
    expect(window.epoch).toBe(0);
    window.clear();
    expect(turns()).toBe(window.buckets);
    expect(window.epoch).toBe(1);
    window.stop();
  });

  it("turns nothing once stopped", () => {
    vi.useFakeTimers();
    const { window, turns } = counted(100);
    window.stop();
    vi.advanceTimersByTime(1_000);
    expect(turns()).toBe(0);
  });
});
