import { describe, expect, it } from "vitest";
import { CallSlots } from "../../server/rpc/call-slots.js";

describe("CallSlots", () => {
  it("never grants more than max at once, and a slot given back can be taken again", () => {
    const slots = new CallSlots(2);
    expect(slots.tryTake()).toBe(true);
    expect(slots.tryTake()).toBe(true);
    expect(slots.tryTake()).toBe(false);
    expect(slots.used).toBe(2);
    slots.give();
    expect(slots.tryTake()).toBe(true);
    slots.give();
    slots.give();
    expect(slots.used).toBe(0);
  });

  it("ignores a give without a take, and refuses a bound that is not a positive integer", () => {
    const slots = new CallSlots(1);
    slots.give();
    expect(slots.used).toBe(0);
    expect(slots.tryTake()).toBe(true);
    expect(slots.tryTake()).toBe(false);
    expect(() => new CallSlots(0)).toThrow(RangeError);
    expect(() => new CallSlots(1.5)).toThrow(RangeError);
  });
});
