import { describe, expect, it } from "vitest";
import { TAG_OVERHEAD_BYTES, TagTable } from "../../server/engine/tag-table.js";

describe("TagTable", () => {
  it("as a cache: unknown tags are undefined (ask the durable tier); epochs only grow; reads older than a forget are not kept", () => {
    const table = new TagTable(100, false);
    expect(table.epochOf("a")).toBeUndefined();
    table.remember(["a"], [5]);
    table.remember(["a"], [3]);
    expect(table.epochOf("a")).toBe(5);
    const before = table.generation;
    table.forget(["a"]);
    table.remember(["a"], [4], before); // read before the forget: it may predate the change that caused it
    expect(table.epochOf("a")).toBeUndefined();
    expect(table.bytes).toBe(0);
  });

  it("as the truth: an invalidation bumps the counter; an evicted tag raises the floor every unknown tag gets", () => {
    const table = new TagTable(2, true);
    expect(table.epochOf("x")).toBe(0);
    expect(table.invalidate(["a"])).toBe(1);
    expect(table.invalidate(["b", "c"])).toBe(2); // three tags, room for two: "a" goes, the floor becomes 1
    expect(table.size).toBe(2);
    expect(table.floor).toBe(1);
    expect(table.epochOf("a")).toBe(1);
    expect(table.epochOf("never")).toBe(1); // hides values written before epoch 1 with it: a miss, never a stale hit
    expect(table.epochOf("c")).toBe(2);
    expect(table.bytes).toBe(2 * (2 + TAG_OVERHEAD_BYTES));
  });

  it("evicts the least recently used tag first and reports the bytes freed", () => {
    const table = new TagTable(10, false);
    table.remember(["old", "new"], [1, 2]);
    table.epochOf("old");
    expect(table.evictOne()).toBe(2 * 3 + TAG_OVERHEAD_BYTES);
    expect(table.epochOf("new")).toBeUndefined();
    expect(table.epochOf("old")).toBe(1);
  });
});
