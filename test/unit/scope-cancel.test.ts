import { describe, expect, it } from "vitest";
import type { CallScope } from "../../server/engine/durable-tier.js";
import { cancelReasonOf, raceCancel } from "../../server/engine/scope-cancel.js";

/** A scope like the server's call context: cancellation through onCancel, and a signal that must not be touched. */
function listenedScope() {
  let reason: unknown;
  const listeners = new Set<(reason: unknown) => void>();
  const scope: CallScope = {
    get signal(): AbortSignal {
      throw new Error("the hot path created the AbortSignal");
    },
    get cancelReason() {
      return reason;
    },
    onCancel(listener) {
      if (reason !== undefined) {
        listener(reason);
        return () => {};
      }
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return {
    scope,
    listeners,
    cancel(why: unknown) {
      reason = why;
      for (const l of [...listeners]) l(why);
      listeners.clear();
    },
  };
}

describe("scope-cancel", () => {
  it("settles like the promise while the call runs, and stops listening afterwards", async () => {
    const s = listenedScope();
    await expect(raceCancel(Promise.resolve(7), s.scope)).resolves.toBe(7);
    await expect(raceCancel(Promise.reject(new Error("tier")), s.scope)).rejects.toThrow("tier");
    expect(s.listeners.size).toBe(0);
    expect(cancelReasonOf(s.scope)).toBeUndefined();
  });

  it("rejects as soon as the call is cancelled, with the mapped reason, through onCancel (the signal is never read)", async () => {
    const s = listenedScope();
    const pending = raceCancel(new Promise<number>(() => {}), s.scope, (why) => new Error(`cancelled: ${String(why)}`));
    s.cancel("deadline");
    await expect(pending).rejects.toThrow("cancelled: deadline");
    expect(cancelReasonOf(s.scope)).toBe("deadline");
    await expect(raceCancel(Promise.resolve(1), s.scope)).rejects.toBe("deadline");
  });

  it("falls back to the signal for scopes without onCancel", async () => {
    const controller = new AbortController();
    const scope: CallScope = { signal: controller.signal };
    const pending = raceCancel(new Promise<number>(() => {}), scope);
    expect(cancelReasonOf(scope)).toBeUndefined();
    controller.abort("gone");
    await expect(pending).rejects.toBe("gone");
    expect(cancelReasonOf(scope)).toBe("gone");
    await expect(raceCancel(Promise.resolve(2), {})).resolves.toBe(2);
    await expect(raceCancel(Promise.resolve(3), undefined)).resolves.toBe(3);
  });
});
