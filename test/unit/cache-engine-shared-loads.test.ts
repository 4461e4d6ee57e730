import { afterEach, describe, expect, it } from "vitest";
import { TierUnavailableError } from "../../core/errors.js";
import type { CallScope } from "../../server/engine/durable-tier.js";
import { cancelReasonOf, listenToAbort } from "../../server/engine/scope-cancel.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";
import { engineWith } from "../helpers/test-engine.js";
import { textEnvelope } from "../helpers/text-envelope.js";
import { UnhandledRejections } from "../helpers/unhandled-rejections.js";

const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);
const settle = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A durable tier whose reads wait for `open()` and, like RedisGuard, give up
 * with "call cancelled" as soon as the scope they were given ends early.
 */
class ScopedSlowTier extends FakeDurableTier {
  readonly scopes: CallScope[] = [];
  /** Reads started, counted before they wait. */
  readonly started = { get: 0, getMany: 0 };
  #open!: () => void;
  #opened = new Promise<void>((resolve) => (this.#open = resolve));

  open(): void {
    this.#open();
  }

  override async get(ns: string, key: string, scope?: CallScope) {
    this.started.get++;
    await this.#waitUnder(scope);
    return super.get(ns, key);
  }

  override async getMany(ns: string, keys: readonly string[], scope?: CallScope) {
    this.started.getMany++;
    await this.#waitUnder(scope);
    return super.getMany(ns, keys);
  }

  #waitUnder(scope: CallScope | undefined): Promise<void> {
    if (scope) this.scopes.push(scope);
    return new Promise<void>((resolve, reject) => {
      const cancel = () => reject(new TierUnavailableError("redis get failed: call cancelled"));
      const stop = scope?.onCancel ? scope.onCancel(cancel) : scope?.signal && listenToAbort(scope.signal, cancel);
      void this.#opened.then(() => (stop?.(), resolve()));
    });
  }
}

function engineWithValues(keys: string[]) {
  const clock = fakeClock();
  const durable = new ScopedSlowTier(clock.now);
  const engine = engineWith(clock, durable);
  for (const key of keys) durable.data.set(`ns\u0000${key}`, textEnvelope(`v-${key}`));
  return { engine, durable };
}

function endable(): { scope: CallScope; end: (reason: Error) => void } {
  const controller = new AbortController();
  return { scope: { signal: controller.signal }, end: (reason) => controller.abort(reason) };
}

describe("CacheEngine: a durable read shared by several calls", () => {
  const unhandled = new UnhandledRejections().install();
  afterEach(() => unhandled.assertNoneSince(0));

  it("one caller's early end (cancel, short deadline) fails that caller alone: the others sharing its read get the value", async () => {
    const { engine, durable } = engineWithValues(["k"]);
    const first = endable();
    const firstGet = engine.get("ns", "k", first.scope);
    const second = engine.get("ns", "k", endable().scope);
    const third = engine.get("ns", "k");
    first.end(new Error("deadline exceeded"));
    await expect(firstGet).rejects.toThrow("deadline exceeded");
    durable.open();
    expect(text((await second)?.value)).toBe("v-k");
    expect(text((await third)?.value)).toBe("v-k");
    expect(durable.started.get).toBe(1);
    expect(cancelReasonOf(durable.scopes[0])).toBeUndefined();
  });

  it("the read is cancelled, and so stops, once every caller waiting for it has ended early", async () => {
    const { engine, durable } = engineWithValues(["k"]);
    const callers = [endable(), endable()];
    const gets = callers.map((caller) => engine.get("ns", "k", caller.scope));
    const outcomes = gets.map((get) => get.catch((err: Error) => err.message));
    callers[0]!.end(new Error("first gone"));
    await settle();
    expect(cancelReasonOf(durable.scopes[0])).toBeUndefined();
    callers[1]!.end(new Error("second gone"));
    expect(await Promise.all(outcomes)).toEqual(["first gone", "second gone"]);
    expect(cancelReasonOf(durable.scopes[0])).toBeInstanceOf(Error);
    await settle();
    expect(engine.get("ns", "k")).toBeInstanceOf(Promise); // a new read starts: the abandoned one left no load behind
    durable.open();
    expect(text((await engine.get("ns", "k"))?.value)).toBe("v-k");
  });

  it("a Get joining a GetMany's batch read is not failed by the GetMany's caller ending early, nor the reverse", async () => {
    const { engine, durable } = engineWithValues(["a", "b", "c"]);
    const batchCaller = endable();
    const batch = engine.getMany("ns", ["a", "b"], batchCaller.scope);
    const joiner = engine.get("ns", "b", endable().scope);
    const singleCaller = endable();
    const single = engine.get("ns", "c", singleCaller.scope);
    const batchJoiningSingle = engine.getMany("ns", ["c", "a"], endable().scope);
    batchCaller.end(new Error("batch caller gone"));
    singleCaller.end(new Error("single caller gone"));
    await expect(batch).rejects.toThrow("batch caller gone");
    await expect(single).rejects.toThrow("single caller gone");
    durable.open();
    expect(text((await joiner)?.value)).toBe("v-b");
    expect((await batchJoiningSingle).map((found) => [found.key, text(found.value)])).toEqual([
      ["c", "v-c"],
      ["a", "v-a"],
    ]);
    expect(durable.started.getMany).toBe(1);
    expect(durable.started.get).toBe(1);
  });

  it("a caller that ended before asking starts no read", async () => {
    const { engine, durable } = engineWithValues(["k"]);
    const gone = endable();
    gone.end(new Error("already gone"));
    await expect(engine.get("ns", "k", gone.scope)).rejects.toThrow("already gone");
    await expect(engine.getMany("ns", ["k", "j"], gone.scope)).rejects.toThrow("already gone");
    expect(durable.started.get + durable.started.getMany).toBe(0);
  });
});
