import { describe, expect, it } from "vitest";
import { CallSlots } from "../../server/rpc/call-slots.js";

describe("CallSlots", () => {
  it("never grants more than max at once, serves waiters first come first served, and hands a freed slot to the longest waiter", async () => {
    const slots = new CallSlots(2);
    expect(await slots.take()).toBe(true);
    expect(slots.tryTake()).toBe(true);
    expect(slots.tryTake()).toBe(false);
    const order: string[] = [];
    const a = slots.take().then((ok) => order.push(`a ${ok}`));
    const b = slots.take().then((ok) => order.push(`b ${ok}`));
    slots.give();
    await a;
    expect(order).toEqual(["a true"]);
    expect(slots.used).toBe(2);
    expect(slots.tryTake()).toBe(false); // b waits: a newcomer does not jump the queue
    slots.give();
    await b;
    expect(order).toEqual(["a true", "b true"]);
    slots.give();
    slots.give();
    expect(slots.used).toBe(0);
  });

  it("a waiter that gives up is skipped and holds nothing", async () => {
    const slots = new CallSlots(1);
    slots.tryTake();
    const abort = new AbortController();
    const waiting = slots.take(abort.signal);
    abort.abort();
    expect(await waiting).toBe(false);
    slots.give();
    expect(slots.used).toBe(0);
    expect(await slots.take(AbortSignal.abort())).toBe(true); // a free slot is taken even by an aborted caller's first try
    expect(() => new CallSlots(0)).toThrow(RangeError);
  });
});
