import { describe, expect, it } from "vitest";
import type { NamespaceStatsSnapshot } from "../../server/engine/namespace-stats.js";
import { NamespaceSeriesGroups, OTHER_NAMESPACES } from "../../server/observability/namespace-series.js";

function ns(namespace: string, hits: number): NamespaceStatsSnapshot {
  const tier = { tier: "memory" as const, hits, misses: 0, hitRate: 1, sets: 1, deletes: 0, entries: 1, bytes: 10, evictionsSize: 0, evictionsCount: 0, expirations: 0 };
  return { namespace, tiers: [tier], bytesIn: 5, bytesStored: 5, compressionRatio: 1, degradedWrites: 0, tagInvalidations: 0 };
}

const summary = (list: NamespaceStatsSnapshot[]) => list.map((s) => [s.namespace, s.tiers[0]!.hits, s.tiers[0]!.sets, s.bytesIn]);

describe("NamespaceSeriesGroups", () => {
  it("gives series of their own to the first namespaces up to the cap, sums the rest, and never moves one between the groups", () => {
    const groups = new NamespaceSeriesGroups(2);
    expect(summary(groups.group([ns("a", 1), ns("b", 2), ns("c", 3), ns("d", 4)]))).toEqual([
      ["a", 1, 1, 5],
      ["b", 2, 1, 5],
      [OTHER_NAMESPACES, 7, 2, 10],
    ]);
    // "b" is no longer listed (the archive dropped it): a new namespace takes its place, "c" stays summed.
    expect(summary(groups.group([ns("c", 3), ns("a", 1), ns("e", 9), ns("d", 4)]))).toEqual([
      ["a", 1, 1, 5],
      ["e", 9, 1, 5],
      [OTHER_NAMESPACES, 7, 2, 10],
    ]);
  });

  it("lists every namespace under the cap, with no sum", () => {
    expect(summary(new NamespaceSeriesGroups(10).group([ns("a", 1)]))).toEqual([["a", 1, 1, 5]]);
  });
});
