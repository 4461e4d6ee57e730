import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { InvalidationBus } from "../../server/engine/invalidation-bus.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const heapUsed = () => {
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage().heapUsed;
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** A key as the server gets it: decoded from request bytes, in an array grown by push. */
const decodedKeys = (count: number, length: number, seed: string): string[] => {
  const keys: string[] = [];
  for (let i = 0; i < count; i++) keys.push(decoder.decode(encoder.encode(`${seed}:${i}:`.padEnd(length, "x").slice(0, length))));
  return keys;
};

describe("the Watch history's size estimate", () => {
  // Shapes of traffic: clears (no keys), single deletes, batches, long keys, one event in each of many namespaces.
  it.each([
    { events: 100_000, keys: 0, length: 0, namespaces: 1 },
    { events: 100_000, keys: 1, length: 16, namespaces: 1 },
    { events: 20_000, keys: 10, length: 24, namespaces: 50 },
    { events: 1_000, keys: 200, length: 200, namespaces: 1 },
    { events: 50_000, keys: 1, length: 8, namespaces: 50_000 },
  ])("is at least what the heap holds, and within 2.5 times of it: %o", ({ events, keys, length, namespaces }) => {
    const bus = new InvalidationBus({ maxRetainedBytes: Number.MAX_SAFE_INTEGER });
    const before = heapUsed();
    for (let i = 0; i < events; i++) bus.publish({ kind: "delete", namespace: decoder.decode(encoder.encode(`ns-${i % namespaces}`)), keys: decodedKeys(keys, length, `${i}`) });
    const held = heapUsed() - before;
    expect(bus.retainedBytes).toBeGreaterThanOrEqual(held);
    expect(bus.retainedBytes).toBeLessThanOrEqual(2.5 * held);
  });
});
