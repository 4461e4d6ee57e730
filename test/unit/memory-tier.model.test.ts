import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  EXPIRED_PURGE_PER_SET,
  MemoryTier,
  type EvictionCause,
  type EvictionPolicyName,
  type MemoryTierStats,
} from "../../core/memory-tier.js";
import { LFU_AGING_MIN_ENTRIES, LFU_AGING_USES_PER_ENTRY } from "../../core/eviction/lfu.js";

/** Commands over a small key space; TTLs in clock ms relative to "now" (-1 = already past). */
type Command =
  | { op: "get" | "getEntry" | "peek" | "has" | "delete"; key: string }
  | { op: "set"; key: string; length: number; ttl: number }
  | { op: "touch"; key: string; ttl: number }
  | { op: "advance"; ms: number }
  | { op: "purge"; limit: number | undefined }
  | { op: "clear" };

const ttlArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 30 }) },
  { weight: 1, arbitrary: fc.constant(-1) },
);

/** Up to `maxLength` commands over `keyCount` keys. */
function commandsArb(keyCount: number, maxLength = 100): fc.Arbitrary<Command[]> {
  const keyArb = fc.nat({ max: keyCount - 1 }).map((i) => `k${i}`);
  const commandArb: fc.Arbitrary<Command> = fc.oneof(
    { weight: 8, arbitrary: fc.record({ op: fc.constant("set" as const), key: keyArb, length: fc.integer({ min: 0, max: 40 }), ttl: ttlArb }) },
    { weight: 6, arbitrary: fc.record({ op: fc.constantFrom("get" as const, "getEntry" as const), key: keyArb }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("peek" as const, "has" as const, "delete" as const), key: keyArb }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("touch" as const), key: keyArb, ttl: ttlArb }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 12 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("purge" as const), limit: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }) }) },
    { weight: 1, arbitrary: fc.constant({ op: "clear" as const }) },
  );
  return fc.array(commandArb, { maxLength, size: "max" });
}

function boundsArb(entries: { min: number; max: number }, bytes: { min: number; max: number }): fc.Arbitrary<Bounds> {
  return fc.oneof(
    fc.record({ maxEntries: fc.integer(entries) }),
    fc.record({ maxBytes: fc.integer(bytes) }),
    fc.record({ maxEntries: fc.integer(entries), maxBytes: fc.integer(bytes) }),
  );
}

/** A tight tier over 8 keys: every bound binds often. */
const smallScenario = fc.tuple(boundsArb({ min: 1, max: 6 }, { min: 10, max: 120 }), commandsArb(8));
/** Long runs on a tight tier: LFU ages its frequencies several times. */
const longScenario = fc.tuple(boundsArb({ min: 1, max: 6 }, { min: 10, max: 120 }), commandsArb(8, 400));
/** A roomier tier over 40 keys, where TinyLFU's window holds entries by bytes too. */
const largeScenario = fc.tuple(boundsArb({ min: 8, max: 30 }, { min: 300, max: 1_200 }), commandsArb(40));

type Bounds = { maxEntries: number } | { maxBytes: number } | { maxEntries: number; maxBytes: number };

const OVERHEAD = 5;
const START = 1_000;

interface ModelEntry {
  value: string;
  size: number;
  expiresAt: number;
  freq: number;
  /** When the entry last moved in its policy's order. */
  tick: number;
}

/** The obvious, slow implementation the tier must match exactly for LRU, FIFO and LFU (with its aging). */
class ReferenceTier {
  readonly entries = new Map<string, ModelEntry>();
  readonly events: [string, string, EvictionCause][] = [];
  readonly stats: MemoryTierStats = {
    hits: 0,
    misses: 0,
    sets: 0,
    deletes: 0,
    evictionsSize: 0,
    evictionsCount: 0,
    expirations: 0,
    rejections: 0,
  };
  bytes = 0;
  #tick = 0;
  /** LFU: uses since frequencies were last halved. */
  #uses = 0;

  constructor(
    readonly policy: "lru" | "fifo" | "lfu",
    readonly maxEntries: number,
    readonly maxBytes: number,
    readonly now: () => number,
  ) {}

  get(key: string): string | undefined {
    const entry = this.#live(key);
    if (entry === undefined) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    if (this.policy === "lfu") entry.freq++;
    if (this.policy !== "fifo") entry.tick = ++this.#tick;
    this.#use();
    return entry.value;
  }

  peek(key: string): string | undefined {
    const entry = this.entries.get(key);
    return entry === undefined || this.#expired(entry) ? undefined : entry.value;
  }

  set(key: string, value: string, expiresAt: number): boolean {
    const size = value.length + OVERHEAD;
    let entry = this.#live(key);
    if ((expiresAt !== 0 && expiresAt <= this.now()) || size > this.maxBytes) {
      if (entry !== undefined) this.#remove(key);
      if (size > this.maxBytes && !(expiresAt !== 0 && expiresAt <= this.now())) this.stats.rejections++;
      return false;
    }
    for (let i = 0; i < EXPIRED_PURGE_PER_SET; i++) {
      const expired = this.#earliestExpired();
      if (expired === undefined) break;
      this.#evict(expired, "expired");
    }
    if (entry === undefined) {
      entry = { value, size, expiresAt, freq: 1, tick: ++this.#tick };
      this.entries.set(key, entry);
      this.bytes += size;
    } else {
      this.bytes += size - entry.size;
      Object.assign(entry, { value, size, expiresAt, freq: entry.freq + 1, tick: ++this.#tick });
    }
    this.#use();
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) {
      const expired = this.#earliestExpired();
      if (expired !== undefined) {
        this.#evict(expired, "expired");
        continue;
      }
      const cause = this.entries.size > this.maxEntries ? "count" : "size";
      let victim: string | undefined;
      let best: ModelEntry | undefined;
      for (const [k, e] of this.entries) {
        if (k === key) continue;
        const better =
          best === undefined ||
          (this.policy === "lfu" && e.freq !== best.freq ? e.freq < best.freq : e.tick < best.tick);
        if (better) {
          victim = k;
          best = e;
        }
      }
      this.#evict(victim as string, cause);
    }
    this.stats.sets++;
    return true;
  }

  delete(key: string): boolean {
    const entry = this.#live(key);
    if (entry === undefined) return false;
    this.#remove(key);
    this.stats.deletes++;
    return true;
  }

  touch(key: string, expiresAt: number): boolean {
    const entry = this.#live(key);
    if (entry === undefined) return false;
    entry.expiresAt = expiresAt;
    return true;
  }

  purge(limit = Infinity): number {
    let purged = 0;
    while (purged < limit) {
      const expired = this.#earliestExpired();
      if (expired === undefined) break;
      this.#evict(expired, "expired");
      purged++;
    }
    return purged;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
    this.#uses = 0;
  }

  liveKeys(): string[] {
    return [...this.entries].filter(([, e]) => !this.#expired(e)).map(([k]) => k).sort();
  }

  /** LFU aging: after enough uses per entry held, halve every frequency; ties keep (old frequency, recency) order. */
  #use(): void {
    if (this.policy !== "lfu") return;
    if (++this.#uses < LFU_AGING_USES_PER_ENTRY * Math.max(this.entries.size, LFU_AGING_MIN_ENTRIES)) return;
    this.#uses = 0;
    const ordered = [...this.entries.values()].sort((a, b) => a.freq - b.freq || a.tick - b.tick);
    for (const entry of ordered) {
      entry.freq = Math.floor(entry.freq / 2);
      entry.tick = ++this.#tick;
    }
  }

  /** The unexpired entry for `key`; an expired one is reclaimed. */
  #live(key: string): ModelEntry | undefined {
    const entry = this.entries.get(key);
    if (entry !== undefined && this.#expired(entry)) {
      this.#evict(key, "expired");
      return undefined;
    }
    return entry;
  }

  #expired(entry: ModelEntry): boolean {
    return entry.expiresAt !== 0 && entry.expiresAt <= this.now();
  }

  #earliestExpired(): string | undefined {
    let found: string | undefined;
    let earliest = Infinity;
    for (const [k, e] of this.entries) {
      if (this.#expired(e) && e.expiresAt < earliest) {
        found = k;
        earliest = e.expiresAt;
      }
    }
    return found;
  }

  #remove(key: string): void {
    this.bytes -= (this.entries.get(key) as ModelEntry).size;
    this.entries.delete(key);
  }

  #evict(key: string, cause: EvictionCause): void {
    const entry = this.entries.get(key) as ModelEntry;
    this.#remove(key);
    if (cause === "expired") this.stats.expirations++;
    else if (cause === "size") this.stats.evictionsSize++;
    else this.stats.evictionsCount++;
    this.events.push([key, entry.value, cause]);
  }
}

type Resolved =
  | { op: "get" | "getEntry" | "peek" | "has" | "delete"; key: string }
  | { op: "set"; key: string; value: string; expiresAt: number }
  | { op: "touch"; key: string; expiresAt: number }
  | { op: "advance"; ms: number }
  | { op: "purge"; limit: number | undefined }
  | { op: "clear" };

/** Owns the fake clock and turns commands into concrete calls on the tier and the model. */
class Harness {
  now = START;
  gets = 0;
  readonly events: [string, string, EvictionCause][] = [];
  readonly tier: MemoryTier<string>;
  readonly model: ReferenceTier | undefined;
  #sequence = 0;

  constructor(policy: EvictionPolicyName, bounds: Bounds) {
    this.tier = new MemoryTier<string>({
      ...bounds,
      policy,
      clock: () => this.now,
      sizeOf: (v) => v.length,
      entryOverheadBytes: OVERHEAD,
      onEvict: (k, v, c) => void this.events.push([k, v, c]),
    });
    this.model =
      policy === "tinylfu"
        ? undefined
        : new ReferenceTier(
            policy,
            "maxEntries" in bounds ? bounds.maxEntries : Infinity,
            "maxBytes" in bounds ? bounds.maxBytes : Infinity,
            () => this.now,
          );
  }

  /** Absolute expiry for a relative ttl; unique, so "earliest expired" is a total order as the exact model needs. */
  #expiresAt(ttl: number): number {
    const tiebreak = ++this.#sequence / 1e7;
    if (ttl === 0) return 0;
    return ttl === -1 ? this.now - 0.5 + tiebreak : this.now + ttl + tiebreak;
  }

  resolve(command: Command): Resolved {
    switch (command.op) {
      case "set": {
        const value = `${command.key}:${++this.#sequence}`.padEnd(command.length, ".");
        return { op: "set", key: command.key, value, expiresAt: this.#expiresAt(command.ttl) };
      }
      case "touch":
        return { op: "touch", key: command.key, expiresAt: this.#expiresAt(command.ttl) };
      default:
        return command;
    }
  }

  /** Apply to the tier; returns its result (getEntry: the entry). */
  applyTier(command: Resolved): unknown {
    const tier = this.tier;
    switch (command.op) {
      case "get":
        this.gets++;
        return tier.get(command.key);
      case "getEntry":
        this.gets++;
        return tier.getEntry(command.key);
      case "peek":
        return tier.peek(command.key);
      case "has":
        return tier.has(command.key);
      case "delete":
        return tier.delete(command.key);
      case "set":
        return tier.set(command.key, command.value, command.expiresAt);
      case "touch":
        return tier.touch(command.key, command.expiresAt);
      case "purge":
        return tier.purgeExpired(command.limit);
      case "clear":
        return tier.clear();
      case "advance":
        this.now += command.ms;
        return undefined;
    }
  }

  /** Apply to the model (after applyTier); returns what the tier should have returned. */
  applyModel(command: Resolved): unknown {
    const model = this.model as ReferenceTier;
    switch (command.op) {
      case "get":
        return model.get(command.key);
      case "getEntry": {
        const value = model.get(command.key);
        const entry = model.entries.get(command.key);
        return value === undefined || entry === undefined ? undefined : { value, expiresAt: entry.expiresAt };
      }
      case "peek":
        return model.peek(command.key);
      case "has":
        return model.peek(command.key) !== undefined;
      case "delete":
        return model.delete(command.key);
      case "set":
        return model.set(command.key, command.value, command.expiresAt);
      case "touch":
        return model.touch(command.key, command.expiresAt);
      case "purge":
        return model.purge(command.limit);
      case "clear":
        return model.clear();
      case "advance":
        return undefined;
    }
  }
}

const PARAMS = { numRuns: 150 } as const;

describe.each(["lru", "fifo", "lfu"] as const)("MemoryTier matches the reference model exactly (%s)", (policy) => {
  it("results, live keys, eviction order, size, bytes and stats after every command", () => {
    fc.assert(
      fc.property(policy === "lfu" ? fc.oneof(smallScenario, longScenario) : smallScenario, ([bounds, commands]) => {
        const harness = new Harness(policy, bounds);
        const model = harness.model as ReferenceTier;
        for (const command of commands) {
          const resolved = harness.resolve(command);
          const actual = harness.applyTier(resolved);
          expect(actual, JSON.stringify(resolved)).toEqual(harness.applyModel(resolved));
          expect([...harness.tier.keys()].sort()).toEqual(model.liveKeys());
          expect(harness.events).toEqual(model.events);
          expect(harness.tier.size).toBe(model.entries.size);
          expect(harness.tier.bytes).toBe(model.bytes);
          expect({ ...harness.tier.stats }).toEqual(model.stats);
        }
      }),
      PARAMS,
    );
  });
});

describe.each(["lru", "fifo", "lfu", "tinylfu"] as const)("MemoryTier invariants (%s)", (policy) => {
  it("bounds hold, hits + misses = gets, nothing expired or stale is returned", () => {
    fc.assert(
      fc.property(fc.oneof(smallScenario, largeScenario), ([bounds, commands]) => {
        const maxEntries = "maxEntries" in bounds ? bounds.maxEntries : Infinity;
        const maxBytes = "maxBytes" in bounds ? bounds.maxBytes : Infinity;
        const harness = new Harness(policy, bounds);
        const tier = harness.tier;
        // The only thing a correct tier may return for a key: its last stored value, while unexpired.
        const stored = new Map<string, { value: string; expiresAt: number }>();
        const allowed = (key: string, value: string, expiresAt?: number): void => {
          const entry = stored.get(key);
          expect(entry?.value, key).toBe(value);
          const at = entry?.expiresAt ?? 0;
          expect(at === 0 || at > harness.now, `${key} expired`).toBe(true);
          if (expiresAt !== undefined) expect(expiresAt).toBe(at);
        };
        // What the tier holds (expired included), derived from results and onEvict: sizes per key.
        const held = new Map<string, number>();
        let seenEvents = 0;
        for (const command of commands) {
          const resolved = harness.resolve(command);
          const result = harness.applyTier(resolved);
          // A set's evictions precede its store; a set never reports evicting its own key.
          for (; seenEvents < harness.events.length; seenEvents++) {
            const [key, value] = harness.events[seenEvents] as [string, string, EvictionCause];
            expect(held.has(key), `evicted ${key} was held`).toBe(true);
            expect(stored.get(key)?.value).toBe(value);
            held.delete(key);
            stored.delete(key);
          }
          switch (resolved.op) {
            case "set":
              if (result === true) {
                stored.set(resolved.key, { value: resolved.value, expiresAt: resolved.expiresAt });
                held.set(resolved.key, resolved.value.length + OVERHEAD);
              } else {
                stored.delete(resolved.key);
                held.delete(resolved.key);
              }
              break;
            case "touch":
              if (result === true) (stored.get(resolved.key) as { expiresAt: number }).expiresAt = resolved.expiresAt;
              break;
            case "delete":
              stored.delete(resolved.key);
              held.delete(resolved.key);
              break;
            case "clear":
              stored.clear();
              held.clear();
              break;
            case "get":
            case "peek":
              if (result !== undefined) allowed(resolved.key, result as string);
              break;
            case "getEntry":
              if (result !== undefined) {
                const entry = result as { value: string; expiresAt: number };
                allowed(resolved.key, entry.value, entry.expiresAt);
              }
              break;
            case "has":
              if (result === true) allowed(resolved.key, tier.peek(resolved.key) as string);
              break;
            default:
              break;
          }
          expect(tier.size).toBeLessThanOrEqual(maxEntries);
          expect(tier.bytes).toBeLessThanOrEqual(maxBytes);
          expect(tier.size).toBe(held.size);
          expect(tier.bytes).toBe([...held.values()].reduce((a, b) => a + b, 0));
          for (const key of tier.keys()) allowed(key, tier.peek(key) as string);
        }
        const s = tier.stats;
        expect(s.hits + s.misses).toBe(harness.gets);
        expect(s.evictionsSize + s.evictionsCount + s.expirations).toBe(harness.events.length);
      }),
      PARAMS,
    );
  });
});
