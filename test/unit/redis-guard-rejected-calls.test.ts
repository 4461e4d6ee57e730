import { describe, expect, it } from "vitest";
import type { GuardedOperation, RedisGuard } from "../../server/tiers/redis-guard.js";
import { testGuard } from "../helpers/test-guard.js";

/**
 * Calls refused while the breaker is open never reached Redis, so they must
 * not count in its window as calls that ran. opossum counts each one as a
 * call (`fires`) that did not fail: after 200 refusals a breaker closed by a
 * reconnection (or by a probe) needed about 200 new failures to open again,
 * and meanwhile every call waited out its timeout and retries.
 */
const failing: GuardedOperation<string> = { name: "get", idempotent: true, run: () => Promise.reject(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })) };
const answering: GuardedOperation<string> = { name: "get", idempotent: true, run: () => Promise.resolve("value") };

async function openThenRefuse(g: RedisGuard, refusals: number): Promise<void> {
  for (let i = 0; i < 4; i++) await g.exec(failing).catch(() => undefined);
  expect(g.state).toBe("open");
  for (let i = 0; i < refusals; i++) await expect(g.exec(answering)).rejects.toThrow(/circuit breaker open/);
  expect(g.stats().shortCircuited).toBe(refusals);
}

/** Failing calls until the breaker opens: how many it took. */
async function failuresToReopen(g: RedisGuard): Promise<number> {
  for (let n = 1; n <= 300; n++) {
    await g.exec(failing).catch(() => undefined);
    if (g.state === "open") return n;
  }
  return Infinity;
}

describe("RedisGuard: refused calls do not count in the breaker's window", () => {
  it("a breaker closed by a confirmed reconnection opens again on the next failures, however many calls it refused", async () => {
    const g = testGuard(500, 0);
    await openThenRefuse(g, 200);
    g.connectionConfirmed();
    expect(g.state).toBe("closed");
    expect(await failuresToReopen(g)).toBeLessThanOrEqual(4);
    g.close();
  });

  it("so does a breaker closed by a probe that succeeded after its reset timeout", async () => {
    const g = testGuard(500, 0, { breakerResetTimeoutMs: 50 });
    await openThenRefuse(g, 200);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(g.state).toBe("half-open");
    await expect(g.exec(answering)).resolves.toBe("value");
    expect(g.state).toBe("closed");
    expect(await failuresToReopen(g)).toBeLessThanOrEqual(4);
    g.close();
  });

  it("a half-open breaker lets one probe through and refuses the calls made while it runs", async () => {
    const g = testGuard(500, 0, { breakerResetTimeoutMs: 50 });
    await openThenRefuse(g, 1);
    await new Promise((resolve) => setTimeout(resolve, 80));
    let answer!: (value: string) => void;
    const probe = g.exec({ name: "get", idempotent: true, run: () => new Promise<string>((resolve) => (answer = resolve)) });
    await expect(g.exec(answering)).rejects.toThrow(/circuit breaker open/);
    answer("probe");
    await expect(probe).resolves.toBe("probe");
    expect(g.state).toBe("closed");
    await expect(g.exec(answering)).resolves.toBe("value");
    g.close();
  });
});
