import { afterEach, describe, expect, it, vi } from "vitest";
import { coarseClock } from "../../core/clock.js";

describe("coarseClock", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("reads its base again after 64 reads, and never runs ahead of it", () => {
    vi.useFakeTimers();
    let time = 1000;
    let reads = 0;
    const clock = coarseClock(() => {
      reads++;
      return time;
    });
    expect(clock()).toBe(1000);
    time = 1005;
    for (let i = 0; i < 63; i++) expect(clock()).toBe(1000);
    expect(reads).toBe(1);
    expect(clock()).toBe(1005);
    expect(reads).toBe(2);
  });

  it("reads its base again once its resolution has passed", () => {
    vi.useFakeTimers();
    let time = 0;
    const clock = coarseClock(() => time, 1);
    expect(clock()).toBe(0);
    time = 7;
    expect(clock()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(clock()).toBe(7);
  });
});
