import { describe, expect, it } from "vitest";
import { SingleFlight } from "../../server/engine/single-flight.js";

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe("SingleFlight.runMany", () => {
  it("lets a later caller of one key share the batch's result for that key, without a load of its own", async () => {
    const flight = new SingleFlight<string>();
    const fetched = deferred<string[]>();
    const batch = flight.runMany(["a", "b"], undefined, () => fetched.promise);
    let ownLoads = 0;
    const joined = flight.run("b", undefined, async () => {
      ownLoads++;
      return "own";
    });
    fetched.resolve(["A", "B"]);
    expect(await batch).toEqual(["A", "B"]);
    expect(await joined).toBe("B");
    expect(ownLoads).toBe(0);
    expect(flight.size).toBe(0);
  });

  it("tells the load which keys were forgotten meanwhile, and a forgotten key starts a new load", async () => {
    const flight = new SingleFlight<string>();
    const fetched = deferred<string[]>();
    let current: boolean[] = [];
    const batch = flight.runMany(["a", "b", "c"], undefined, async (isCurrent) => {
      const values = await fetched.promise;
      current = [0, 1, 2].map(isCurrent);
      return values;
    });
    flight.forget("b");
    expect(flight.has("b")).toBe(false);
    const again = flight.run("b", undefined, async () => "new");
    fetched.resolve(["A", "B", "C"]);
    await batch;
    expect(current).toEqual([true, false, true]);
    expect(await again).toBe("new");
    expect(flight.size).toBe(0);
  });

  it("refuses a batch with a key already in flight", () => {
    const flight = new SingleFlight<string>();
    void flight.run("a", undefined, () => new Promise(() => {}));
    expect(() => flight.runMany(["b", "a"], undefined, async () => ["B", "A"])).toThrow(/already in flight/);
    expect(flight.has("b")).toBe(false);
  });

  it("clears its keys when the batch fails, and joiners see the failure", async () => {
    const flight = new SingleFlight<string>();
    const batch = flight.runMany(["a"], undefined, async () => {
      throw new Error("down");
    });
    const joined = flight.run("a", undefined, async () => "own");
    await expect(batch).rejects.toThrow("down");
    await expect(joined).rejects.toThrow("down");
    expect(flight.size).toBe(0);
  });
});
