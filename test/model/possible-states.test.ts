import { describe, expect, it } from "vitest";
import { fakeClock } from "../helpers/fake-clock.js";
import { PossibleStates } from "./possible-states.js";
import { ReferenceCache } from "./reference-model.js";

/** Calls whose outcome is unknown, tracked per key (what the two-instance conformance runs with faults rely on). */
describe("possible states", () => {
  const setup = () => {
    const clock = fakeClock(1_000_000);
    const possible = new PossibleStates(new ReferenceCache({ maxKeyBytes: 16, now: clock.now }));
    return { clock, possible, model: possible.model };
  };
  const values = (possible: PossibleStates, key: string, ns = "") => possible.each(ns, key, (world) => world.get(ns, key));

  it("a write with an unknown outcome leaves the old and the new value possible, until an acknowledged write", () => {
    const { possible } = setup();
    possible.apply("", ["k"], (m) => m.set("", "k", "old"), "done");
    possible.apply("", ["k"], (m) => m.set("", "k", "new"), "unknown");
    expect(values(possible, "k")).toEqual(["old", "new"]);
    expect(possible.isUncertain("default", "k")).toBe(true);
    possible.apply("", ["k"], (m) => m.set("", "k", "newer"), "unknown");
    expect(values(possible, "k")).toEqual(["old", "new", "newer"]);
    possible.apply("default", ["k"], (m) => m.set("default", "k", "last"), "done");
    expect(values(possible, "k")).toEqual(["last"]);
    expect(possible.uncertainKeys).toBe(0);
  });

  it("an unknown delete or clear adds nothing-there; an acknowledged delete leaves only that", () => {
    const { possible } = setup();
    possible.apply("", ["a", "b"], (m) => m.setMany("", [["a", 1], ["b", 2]]), "done");
    possible.apply("alpha", ["a"], (m) => m.set("alpha", "a", "other namespace"), "done");
    possible.apply("", ["a"], (m) => m.delete("", "a"), "unknown");
    expect(values(possible, "a")).toEqual([1, undefined]);
    possible.apply("", possible.keys(""), (m) => m.clear(""), "unknown");
    expect(values(possible, "b")).toEqual([2, undefined]);
    expect(values(possible, "a", "alpha")).toEqual(["other namespace"]);
    possible.apply("", ["a", "b"], (m) => m.deleteMany("", ["a", "b"]), "done");
    expect([values(possible, "a"), values(possible, "b")]).toEqual([[undefined], [undefined]]);
  });

  it("a call that depends on the state gives a result per possible state, and leaves what each state leads to", () => {
    const { clock, possible } = setup();
    possible.apply("", ["k"], (m) => m.set("", "k", "v", 60_000), "unknown");
    expect(possible.each("", "k", (m) => m.touch("", "k", 120_000))).toEqual([false, true]);
    possible.apply("", ["k"], (m) => m.touch("", "k", 120_000), "done");
    expect(possible.states("", "k").map((entry) => entry?.freshUntil)).toEqual([undefined, clock.now() + 120_000]);
    clock.advance(120_000);
    expect(values(possible, "k")).toEqual([undefined, undefined]);
  });

  it("each and once work on copies: the model changes only through apply", () => {
    const { possible, model } = setup();
    possible.apply("", ["k"], (m) => m.set("", "k", 1), "done");
    expect(possible.each("", "k", (m) => m.wrap("", "k", 2))).toEqual([{ value: 1, loader: "not-called" }]);
    possible.once((m) => m.clear(""));
    expect(model.get("", "k")).toBe(1);
  });
});
