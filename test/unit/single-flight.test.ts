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

describe("SingleFlight: loads shared by callers that may end early", () => {
  const ending = () => {
    const controller = new AbortController();
    return { scope: { signal: controller.signal }, end: (why: string) => controller.abort(new Error(why)) };
  };

  it("a load every caller has left is not joined: it is ending, so the next caller starts a new one", async () => {
    const flight = new SingleFlight<string>();
    const first = deferred<string>();
    const seen: { signal?: AbortSignal; cancelReason?: unknown }[] = [];
    const caller = ending();
    const left = flight.run("k", caller.scope, (_, scope) => (seen.push(scope), first.promise)).catch((err: Error) => err.message);
    caller.end("gone");
    expect(await left).toBe("gone");
    expect(seen[0]!.cancelReason).toBeInstanceOf(Error);
    expect(seen[0]!.signal!.aborted).toBe(true); // a retry's backoff, which waits on the signal, ends too
    expect(flight.has("k")).toBe(false);
    expect(flight.join("k", undefined)).toBeUndefined();
    const next = flight.run("k", undefined, async (_, scope) => (seen.push(scope), "new"));
    expect(await next).toBe("new");
    expect(seen[1]!.cancelReason).toBeUndefined();
    first.resolve("old");
    await first.promise;
    expect(flight.size).toBe(0);
  });

  it("a batch every caller has left is not joined either, and its keys may go into a new batch", async () => {
    const flight = new SingleFlight<string>();
    const caller = ending();
    const batch = flight.runMany(["a", "b"], caller.scope, () => new Promise<string[]>(() => {})).catch((err: Error) => err.message);
    caller.end("gone");
    expect(await batch).toBe("gone");
    expect(await flight.runMany(["b", "c"], undefined, async () => ["B", "C"])).toEqual(["B", "C"]);
  });

  it("stays running while one caller waits, and that caller gets its value", async () => {
    const flight = new SingleFlight<string>();
    const value = deferred<string>();
    let scope: { cancelReason?: unknown } | undefined;
    const leaving = ending();
    const staying = ending();
    const gone = flight.run("k", leaving.scope, (_, s) => ((scope = s), value.promise)).catch((err: Error) => err.message);
    const kept = flight.join("k", staying.scope)!;
    leaving.end("gone");
    expect(await gone).toBe("gone");
    expect(scope!.cancelReason).toBeUndefined();
    expect(flight.has("k")).toBe(true);
    value.resolve("v");
    expect(await kept).toBe("v");
  });
});
