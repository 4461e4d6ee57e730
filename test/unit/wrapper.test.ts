import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_LEASE_MS, Wrapper, resolveWrapOptions, type LeaseRead, type WrapBackend } from "../../client/wrap.js";

/** A backend with no server behind it: every read is a miss with a lease; stores land in a Map. */
function memoryBackend(): WrapBackend & { stored: Map<string, unknown> } {
  const stored = new Map<string, unknown>();
  let leases = 0;
  return {
    stored,
    async getOrLease(_namespace, key): Promise<LeaseRead> {
      if (stored.has(key)) return { found: true, value: stored.get(key), stale: false, leaseToken: "", ttlJitterPpm: 0 };
      return { found: false, value: undefined, stale: false, leaseToken: `lease-${++leases}`, ttlJitterPpm: 0 };
    },
    async store(_namespace, key, value) {
      stored.set(key, value);
    },
    async releaseLease() {},
    local: () => ({ found: false, value: undefined, due: false }),
    failed: () => {},
  };
}

describe("Wrapper", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("without leaseMs or hardTimeout, callers stop waiting for a loader that never settles after the default lease", async () => {
    const backend = memoryBackend();
    const wrapper = new Wrapper(backend);
    void wrapper.wrap("ns", "k", () => new Promise<string>(() => {}), resolveWrapOptions({}));
    let joined: string | undefined;
    void wrapper.wrap("ns", "k", async () => "second run", resolveWrapOptions({})).then((value) => (joined = value));
    await vi.advanceTimersByTimeAsync(DEFAULT_LEASE_MS - 1);
    expect(joined).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(joined).toBe("second run");
    expect(backend.stored.get("k")).toBe("second run");
  });

  it("a caller joining late waits only for what is left of the run's lease", async () => {
    const wrapper = new Wrapper(memoryBackend());
    void wrapper.wrap("ns", "k", () => new Promise<string>(() => {}), resolveWrapOptions({ leaseMs: 1_000 }));
    await vi.advanceTimersByTimeAsync(600);
    let joined: string | undefined;
    void wrapper.wrap("ns", "k", async () => "late run", resolveWrapOptions({ leaseMs: 1_000 })).then((value) => (joined = value));
    await vi.advanceTimersByTimeAsync(399);
    expect(joined).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(joined).toBe("late run");
  });

  it("a run that replaced a stuck one is not dropped when the stuck one settles", async () => {
    const backend = memoryBackend();
    const wrapper = new Wrapper(backend);
    let settle: (value: string) => void = () => {};
    void wrapper.wrap("ns", "k", () => new Promise<string>((resolve) => (settle = resolve)), resolveWrapOptions({ leaseMs: 100 }));
    let secondCalls = 0;
    const slow = () => new Promise<string>((resolve) => setTimeout(() => resolve(`second ${++secondCalls}`), 500));
    const second = wrapper.wrap("ns", "k", slow, resolveWrapOptions({ leaseMs: 1_000 }));
    await vi.advanceTimersByTimeAsync(150);
    settle("first");
    await vi.advanceTimersByTimeAsync(0);
    const third = wrapper.wrap("ns", "k", slow, resolveWrapOptions({ leaseMs: 1_000 }));
    await vi.advanceTimersByTimeAsync(500);
    expect(await second).toBe("second 1");
    expect(await third).toBe("second 1");
    expect(secondCalls).toBe(1);
  });
});
