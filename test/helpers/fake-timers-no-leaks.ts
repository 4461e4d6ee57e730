import { afterEach, beforeEach, expect, vi } from "vitest";
import { UnhandledRejections } from "./unhandled-rejections.js";

/** Lets pending promise chains and setImmediate callbacks run (fake timers leave setImmediate real). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Every test of the file runs on fake setTimeout/clearTimeout/Date, and ends
 * (after {@link settle}) with no timer left and no unhandled rejection.
 */
export function fakeTimersWithoutLeaks(): void {
  const rejections = new UnhandledRejections();
  let seen = 0;
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    rejections.install();
    seen = rejections.count;
  });
  afterEach(async () => {
    await settle();
    const timers = vi.getTimerCount();
    rejections.uninstall();
    vi.useRealTimers();
    rejections.assertNoneSince(seen);
    expect(timers, "timers left behind").toBe(0);
  });
}
