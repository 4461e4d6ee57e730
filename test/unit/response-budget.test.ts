import { describe, expect, it } from "vitest";
import { ResponseBudget } from "../../server/rpc/response-budget.js";

describe("ResponseBudget: one bound on the response bytes all calls decode at once", () => {
  it("lets calls take their share while it fits, queues the rest in order, and wakes them as shares come back", async () => {
    const budget = new ResponseBudget(100);
    const first = await budget.acquire(60);
    const order: string[] = [];
    const second = budget.acquire(60).then((release) => (order.push("second"), release));
    const third = budget.acquire(10).then((release) => (order.push("third"), release)); // fits, but waits its turn
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual([]);
    first();
    first(); // a second release gives nothing back
    (await second)();
    (await third)();
    expect(order).toEqual(["second", "third"]);
    expect(budget.available).toBe(100);
  });

  it("caps a share at the whole budget, and lets an aborted waiter go without taking anything", async () => {
    const budget = new ResponseBudget(100);
    const all = await budget.acquire(10_000);
    expect(budget.available).toBe(0);
    const controller = new AbortController();
    const waiting = budget.acquire(1, controller.signal);
    controller.abort(new Error("deadline"));
    await expect(waiting).rejects.toThrow("deadline");
    all();
    expect(budget.available).toBe(100);
  });
});
