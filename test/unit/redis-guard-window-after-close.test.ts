import { describe, expect, it } from "vitest";
import type { RedisGuard } from "../../server/tiers/redis-guard.js";
import { answeringGet as answering, failingGet as failing, openBreaker, testGuard } from "../helpers/test-guard.js";

/**
 * A breaker that closes (a probe answered, or Redis answered after a
 * reconnection) starts from an empty window. opossum keeps its window across
 * a close: the failures that opened the breaker made the first new failure
 * reopen it, and the calls it refused while open, each counted as a call that
 * did not fail, meant that after 200 refusals it took about 200 new failures
 * to open again while every call waited out its timeout and retries.
 */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** testGuard's breaker opens once more than half of at least 4 attempts in its window failed. */
const VOLUME = 4;

async function openThenRefuse(g: RedisGuard, refusals: number): Promise<void> {
  await openBreaker(g);
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

describe("RedisGuard: a breaker that closes starts from an empty window", () => {
  it("after a confirmed reconnection it opens again once the new calls reach the volume threshold failing, however many calls it refused", async () => {
    const g = testGuard(500, 0);
    await openThenRefuse(g, 200);
    g.connectionConfirmed();
    expect(g.state).toBe("closed");
    expect(await failuresToReopen(g)).toBe(VOLUME);
    g.close();
  });

  it("so does a breaker closed by a probe that succeeded after its reset timeout", async () => {
    const g = testGuard(500, 0, { breakerResetTimeoutMs: 50 });
    await openThenRefuse(g, 200);
    await sleep(80);
    expect(g.state).toBe("half-open");
    await expect(g.exec(answering)).resolves.toBe("value");
    expect(g.state).toBe("closed");
    expect(await failuresToReopen(g)).toBe(VOLUME);
    g.close();
  });

  it("one failure soon after the close, among successes, does not open it again", async () => {
    const g = testGuard(500, 0);
    await openThenRefuse(g, 0);
    g.connectionConfirmed();
    for (let i = 0; i < 3; i++) await g.exec(answering);
    await g.exec(failing).catch(() => undefined);
    expect(g.state).toBe("closed");
    g.close();
  });

  it("an attempt that started before the close and fails after it does not count in the emptied window", async () => {
    const g = testGuard(500, 0);
    let fail!: (error: Error) => void;
    const late = g.exec({ name: "get", idempotent: true, run: () => new Promise<string>((_, reject) => (fail = reject)) }).catch(() => undefined);
    while (g.state === "closed") await g.exec(failing).catch(() => undefined);
    g.connectionConfirmed();
    for (let i = 0; i < VOLUME - 1; i++) await g.exec(answering);
    fail(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
    await late;
    // 2 failures of 5 attempts since the close: below the threshold; 3 of 5 with the late one counted.
    for (let i = 0; i < 2; i++) await g.exec(failing).catch(() => undefined);
    expect(g.state).toBe("closed");
    g.close();
  });

  it("the window still rolls: failures older than it no longer count", async () => {
    const g = testGuard(500, 0, { breakerRollingWindowMs: 100 });
    for (let i = 0; i < VOLUME - 1; i++) await g.exec(failing).catch(() => undefined);
    // Many times the window, so that a busy machine that delays the bucket timer still turns every bucket.
    await sleep(600);
    await g.exec(failing).catch(() => undefined);
    expect(g.state).toBe("closed");
    expect(await failuresToReopen(g)).toBe(VOLUME - 1);
    g.close();
  });

  it("a half-open breaker lets one probe through and refuses the calls made while it runs", async () => {
    const g = testGuard(500, 0, { breakerResetTimeoutMs: 50 });
    await openThenRefuse(g, 1);
    await sleep(80);
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
