import { describe, expect, it } from "vitest";
import { TagTable } from "../../server/engine/tag-table.js";

/*
 * Evicting an invalidated tag bumps the generation; remember() must check it before each tag, not only
 * before the first: when one of its own #set calls evicts (LRU) a tag that comes later in the same list,
 * the older epoch read before the invalidation would be put back.
 */
describe("eviction inside the remember of a late tag-epoch read", () => {
  it("keeps the acknowledged epoch of an own invalidation", () => {
    const table = new TagTable(2, false);
    const readGeneration = table.generation; // a read of tags [b, a] starts; durable: a=1, b=0
    const readEpochs = [0, 1];
    const invGeneration = table.generation; // own InvalidateTags(a) -> durable a=2, acknowledged
    table.remember(["a"], [2], invGeneration);
    table.remember(["x"], [0], table.generation); // some other tag: table full, a is the least recently used
    expect(table.epochOf("x")).toBe(0);
    // (epochOf touched x, a stays the oldest)
    table.remember(["b", "a"], readEpochs, readGeneration); // the read lands: setting b evicts a, then a=1 is put back
    expect(table.epochOf("a") ?? "unknown (read again)").not.toBe(1);
  });
});
