import type { NamespaceStatsSnapshot } from "../engine/namespace-stats.js";

/** The `namespace` label of the series summing the namespaces past the cap (no namespace starts with "_"). */
export const OTHER_NAMESPACES = "_other";

/**
 * Which namespaces get series of their own on /metrics: at most
 * `maxNamespaces`, each keeping them for as long as the server lists it (so
 * its counters only go up); the others are summed under
 * {@link OTHER_NAMESPACES}, and a namespace summed there stays there. A
 * namespace leaves either group only when the counter archive drops it.
 */
export class NamespaceSeriesGroups {
  readonly #own = new Set<string>();
  readonly #other = new Set<string>();

  constructor(readonly maxNamespaces: number) {}

  /** `stats` with the namespaces past the cap summed into one entry named {@link OTHER_NAMESPACES}. */
  group(stats: readonly NamespaceStatsSnapshot[]): NamespaceStatsSnapshot[] {
    const listed = new Set(stats.map((ns) => ns.namespace));
    for (const group of [this.#own, this.#other]) for (const name of group) if (!listed.has(name)) group.delete(name);
    const out: NamespaceStatsSnapshot[] = [];
    let other: NamespaceStatsSnapshot | undefined;
    for (const ns of stats) {
      const own = this.#own.has(ns.namespace) || (this.#own.size < this.maxNamespaces && !this.#other.has(ns.namespace));
      if (own) {
        this.#own.add(ns.namespace);
        out.push(ns);
      } else {
        this.#other.add(ns.namespace);
        if (other) addInto(other, ns);
        else other = { ...ns, namespace: OTHER_NAMESPACES, tiers: ns.tiers.map((t) => ({ ...t })) };
      }
    }
    if (other) out.push(other);
    return out;
  }
}

const TIER_FIELDS = ["hits", "misses", "sets", "deletes", "entries", "bytes", "evictionsSize", "evictionsCount", "expirations"] as const;

/** Adds `b`'s counters into `a` (a copy this module made). */
function addInto(a: NamespaceStatsSnapshot, b: NamespaceStatsSnapshot): void {
  a.tiers.forEach((t, i) => {
    const u = b.tiers[i];
    if (u) for (const field of TIER_FIELDS) t[field] += u[field];
  });
  a.bytesIn += b.bytesIn;
  a.bytesStored += b.bytesStored;
  a.degradedWrites += b.degradedWrites;
  a.tagInvalidations += b.tagInvalidations;
}
