import { isDeepStrictEqual } from "node:util";
import type { ModelEntry, ReferenceCache } from "./reference-model.js";
import { resolveNamespace } from "./rules.js";

/** What a key may hold: an entry, or undefined for nothing. */
export type PossibleEntry = ModelEntry | undefined;

/** How a change ended: acknowledged ("done"), or failed in a way that leaves it open ("unknown"). */
export type ChangeOutcome = "done" | "unknown";

function sameEntry(a: PossibleEntry, b: PossibleEntry): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.freshUntil === b.freshUntil && a.goneAt === b.goneAt && a.hidden === b.hidden && isDeepStrictEqual(a.tags, b.tags) && isDeepStrictEqual(a.value, b.value);
}

function distinct(entries: readonly PossibleEntry[]): PossibleEntry[] {
  const kept: PossibleEntry[] = [];
  for (const entry of entries) if (!kept.some((other) => sameEntry(other, entry))) kept.push(entry);
  return kept;
}

/**
 * The model when some calls' outcomes are unknown. A call that fails with
 * UNAVAILABLE or DEADLINE_EXCEEDED may or may not have taken effect (a write
 * that timed out may still be applied by Redis), so until the next
 * acknowledged write, delete or clear of a key, any of the states it may be
 * in is right.
 *
 * Per key, the entries it may hold. The {@link ReferenceCache} holds one of
 * them and is exact for every other key. Keys are tracked independently (a
 * batch whose outcome is unknown may count as taken for some of its keys and
 * not for others), so what is accepted is a superset of what the service can
 * show, never less: sound, at the price of some precision. Nothing is ruled
 * out by what a read returned, since a read through another instance or a
 * local tier may lag.
 */
export class PossibleStates {
  /** The model; exact for every key not uncertain. */
  readonly model: ReferenceCache;
  readonly #uncertain = new Map<string, Map<string, readonly PossibleEntry[]>>();

  constructor(model: ReferenceCache) {
    this.model = model;
  }

  /** How many keys may be in more than one state now. */
  get uncertainKeys(): number {
    let n = 0;
    for (const keys of this.#uncertain.values()) n += keys.size;
    return n;
  }

  /** The entries `key` may hold: one when its state is known. */
  states(namespace: string, key: string): readonly PossibleEntry[] {
    const ns = resolveNamespace(namespace);
    return this.#uncertain.get(ns)?.get(key) ?? [this.model.peek(ns, key)];
  }

  /** True when `key` may be in more than one state. */
  isUncertain(namespace: string, key: string): boolean {
    return this.#uncertain.get(resolveNamespace(namespace))?.has(key) ?? false;
  }

  /** `call`'s result in each state `key` may be in, each on a copy of the model (the model is left as it is). */
  each<T>(namespace: string, key: string, call: (world: ReferenceCache) => T): T[] {
    return this.states(namespace, key).map((entry) => call(this.#world(namespace, key, entry)));
  }

  /** `call`'s result on a copy of the model: for calls whose result does not depend on the keys' states. */
  once<T>(call: (world: ReferenceCache) => T): T {
    return call(this.model.clone());
  }

  /** The keys of a namespace that hold, or may hold, a value (fresh or stale). */
  keys(namespace: string): string[] {
    const ns = resolveNamespace(namespace);
    return [...new Set([...this.model.keys(ns), ...(this.#uncertain.get(ns)?.keys() ?? [])])];
  }

  /**
   * Applies a change of `keys` (every key `call` may change must be among
   * them; it must be a call the model accepts): `call` runs on the model and
   * on a copy per state of each uncertain key. Afterwards a key may be in any
   * state the change leaves it in; when the outcome is "unknown", also in any
   * state it was in before.
   */
  apply(namespace: string, keys: readonly string[], call: (world: ReferenceCache) => unknown, outcome: ChangeOutcome): void {
    const ns = resolveNamespace(namespace);
    const next = new Map<string, PossibleEntry[]>();
    for (const key of new Set(keys)) {
      const before = this.states(ns, key);
      if (before.length === 1 && outcome === "done") continue; // the change on the model itself says it
      const after = before.map((entry) => {
        const world = this.#world(ns, key, entry);
        call(world);
        return world.peek(ns, key);
      });
      next.set(key, outcome === "done" ? after : [...before, ...after]);
    }
    call(this.model);
    for (const [key, entries] of next) this.#set(ns, key, distinct(entries));
  }

  #world(namespace: string, key: string, entry: PossibleEntry): ReferenceCache {
    const world = this.model.clone();
    world.put(namespace, key, entry);
    return world;
  }

  #set(ns: string, key: string, entries: readonly PossibleEntry[]): void {
    this.model.put(ns, key, entries[0]);
    let keys = this.#uncertain.get(ns);
    if (entries.length === 1) {
      keys?.delete(key);
      return;
    }
    if (keys === undefined) this.#uncertain.set(ns, (keys = new Map()));
    keys.set(key, entries);
  }
}
