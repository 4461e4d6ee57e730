import { describe, expect, it } from "vitest";
import { answeringGet as answering, openBreaker, testGuard } from "../helpers/test-guard.js";

describe("RedisGuard.connectionConfirmed", () => {
  it("closes an open breaker at once: the next call runs instead of failing fast for the rest of the reset timeout", async () => {
    const g = testGuard(500, 0);
    await openBreaker(g);
    await expect(g.exec(answering)).rejects.toThrow(/circuit breaker open/);
    g.connectionConfirmed();
    expect(g.state).toBe("closed");
    await expect(g.exec(answering)).resolves.toBe("value");
    g.close();
  });

  it("does nothing to a closed breaker, and does not bring a shut-down one back", async () => {
    const g = testGuard(500, 0);
    g.connectionConfirmed();
    expect(g.state).toBe("closed");
    await openBreaker(g);
    g.close();
    g.connectionConfirmed();
    await expect(g.exec(answering)).rejects.toThrow(/tier closed/);
  });
});
