import fc from "fast-check";
import { open as openLmdb, type DatabaseOptions } from "lmdb";
import { afterEach, describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { InvalidArgumentError, TierUnavailableError } from "../../core/errors.js";
import { LMDB_TIER_MAX_KEY_BYTES } from "../../server/tiers/lmdb-keys.js";
import { LmdbTier } from "../../server/tiers/lmdb-tier.js";
import { fakeClock, type FakeClock } from "../helpers/fake-clock.js";
import { tempDir } from "../helpers/test-server.js";

const codec = new ValueCodec();
const envelope = (value: string, expiresAt: number) => codec.encode(new TextEncoder().encode(value), "text/plain", expiresAt);
const text = (stored: Uint8Array | undefined) => (stored === undefined ? undefined : new TextDecoder().decode(codec.decode(stored).value));

const MAX_KEY_BYTES = 1024;
/** The first 64 characters of keys that ordered-binary would write raw (it escapes U+0000–U+0004 only in shorter strings). */
const LONG_PREFIX = "p".repeat(64);

interface OpenTier {
  tier: LmdbTier;
  clock: FakeClock;
  dispose(): Promise<void>;
}

function openTier(): OpenTier {
  const dir = tempDir("tiercache-keys-");
  const clock = fakeClock();
  const tier = LmdbTier.open({ dataDir: dir.path, clock: clock.now, sweepIntervalMs: 3_600_000 });
  return {
    tier,
    clock,
    dispose: async () => {
      await tier.close();
      dir.remove();
    },
  };
}

describe("LMDB tier keys: examples that the ordered-binary encoding got wrong", () => {
  let open: OpenTier | undefined;
  afterEach(async () => {
    await open?.dispose();
    open = undefined;
  });

  it("keeps a short key with U+0000 apart from a 64-character key that ordered-binary writes to the same bytes", async () => {
    open = openTier();
    const { tier } = open;
    const short = "\u0000".repeat(32);
    const long = "\u0004\u0000".repeat(32);
    await tier.set("ns", { key: short, envelope: envelope("short", 0), expiresAt: 0 });
    await tier.set("ns", { key: long, envelope: envelope("long", 0), expiresAt: 0 });
    expect(text(await tier.get("ns", short))).toBe("short");
    expect(text(await tier.get("ns", long))).toBe("long");
    expect(await tier.delete("ns", long)).toBe(true);
    expect(text(await tier.get("ns", short))).toBe("short");
  });

  it("clear removes keys of 64+ characters that contain U+0000", async () => {
    open = openTier();
    const { tier } = open;
    const key = `${LONG_PREFIX}\u0000`;
    await tier.set("ns", { key, envelope: envelope("v", 0), expiresAt: 0 });
    await tier.clear("ns");
    expect(await tier.get("ns", key)).toBeUndefined();
  });

  it("the expiry sweep reclaims keys of 64+ characters that contain U+0000", async () => {
    open = openTier();
    const { tier, clock } = open;
    const key = `${LONG_PREFIX}\u0000\u0001`;
    await tier.set("ns", { key, envelope: envelope("v", clock.now() + 10), expiresAt: clock.now() + 10 });
    clock.advance(10);
    expect(await tier.sweep()).toBe(1);
  });

  it("stores a key of max-key-bytes four-byte characters in the longest namespace, with a TTL", async () => {
    open = openTier();
    const { tier, clock } = open;
    const namespace = "n".repeat(64);
    const key = "😀".repeat(MAX_KEY_BYTES / 4);
    const expiresAt = clock.now() + 10;
    await tier.set(namespace, { key, envelope: envelope("v", expiresAt), expiresAt });
    expect(text(await tier.get(namespace, key))).toBe("v");
    clock.advance(10);
    expect(await tier.sweep()).toBe(1);
  });

  it("stores keys up to LMDB_TIER_MAX_KEY_BYTES in the longest namespace with a TTL, and that is LMDB's real limit", async () => {
    open = openTier();
    const { tier, clock } = open;
    const namespace = "n".repeat(64);
    const longest = "😀".repeat(Math.floor(LMDB_TIER_MAX_KEY_BYTES / 4)) + "x".repeat(LMDB_TIER_MAX_KEY_BYTES % 4);
    expect(Buffer.byteLength(longest)).toBe(LMDB_TIER_MAX_KEY_BYTES);
    const expiresAt = clock.now() + 10;
    await tier.set(namespace, { key: longest, envelope: envelope("v", expiresAt), expiresAt });
    expect(text(await tier.get(namespace, longest))).toBe("v");
    const tooLong = `${longest}x`;
    await expect(tier.set(namespace, { key: tooLong, envelope: envelope("w", expiresAt), expiresAt })).rejects.toThrow(TierUnavailableError);
    expect(await tier.get(namespace, tooLong)).toBeUndefined();
    clock.advance(10);
    expect(await tier.sweep()).toBe(1);
  });

  it("refuses a key with a lone surrogate, which UTF-8 would write as U+FFFD, and stores U+FFFD itself", async () => {
    open = openTier();
    const { tier } = open;
    await expect(tier.set("ns", { key: "\uD800", envelope: envelope("lone", 0), expiresAt: 0 })).rejects.toThrow(InvalidArgumentError);
    await tier.set("ns", { key: "\uFFFD", envelope: envelope("replacement", 0), expiresAt: 0 });
    await expect(tier.get("ns", "\uD800")).rejects.toThrow(InvalidArgumentError);
    expect(text(await tier.get("ns", "\uFFFD"))).toBe("replacement");
  });

  it("rolls back a whole batch when one of its keys cannot be stored", async () => {
    open = openTier();
    const { tier, clock } = open;
    const expiresAt = clock.now() + 10;
    const fits = { key: "fits", envelope: envelope("v", expiresAt), expiresAt };
    const tooLong = { key: "x".repeat(LMDB_TIER_MAX_KEY_BYTES + 1), envelope: envelope("w", expiresAt), expiresAt };
    await expect(tier.setMany("n".repeat(64), [fits, tooLong])).rejects.toThrow(TierUnavailableError);
    expect(await tier.getMany("n".repeat(64), [fits.key, tooLong.key])).toEqual([undefined, undefined]);
    clock.advance(10);
    expect(await tier.sweep()).toBe(0);
  });
});

describe("LMDB tier keys: the first format", () => {
  it("is dropped on open, and its entries are not served", async () => {
    const dir = tempDir();
    try {
      const legacyRoot = openLmdb({ path: dir.path });
      const legacyValues = legacyRoot.openDB<Buffer, [string, string]>({ name: "values", encoding: "binary", keyEncoding: "ordered-binary" });
      const legacyExpiry = legacyRoot.openDB<Buffer, [number, string, string]>({ name: "expiry", encoding: "binary", keyEncoding: "ordered-binary" });
      await legacyValues.put(["ns", "k"], Buffer.from(envelope("old format", 0)));
      await legacyExpiry.put([1, "ns", "k"], Buffer.from([1]));
      await legacyRoot.close();

      const tier = LmdbTier.open({ dataDir: dir.path });
      expect(await tier.get("ns", "k")).toBeUndefined();
      await tier.close();

      const root = openLmdb({ path: dir.path });
      const existingOnly = (name: string): DatabaseOptions & { name: string; create: boolean } => ({ name, create: false });
      expect(root.openDB(existingOnly("values"))).toBeUndefined();
      expect(root.openDB(existingOnly("expiry"))).toBeUndefined();
      expect(root.openDB(existingOnly("values-v2"))).toBeDefined();
      await root.close();
    } finally {
      dir.remove();
    }
  });
});

type Namespace = (typeof NAMESPACES)[number];
/** Namespaces of which one is a prefix of the others. */
const NAMESPACES = ["a", "a.b", "a-"] as const;

type Command =
  | { op: "set"; ns: Namespace; key: number; ttl: number }
  | { op: "setMany"; ns: Namespace; keys: number[]; ttl: number }
  | { op: "get" | "has" | "delete" | "touch"; ns: Namespace; key: number; ttl: number }
  | { op: "getMany" | "deleteMany"; ns: Namespace; keys: number[] }
  | { op: "clear"; ns: Namespace }
  | { op: "sweep" }
  | { op: "advance"; ms: number };

const controlChar = fc.integer({ min: 0, max: 0x1f }).map((code) => String.fromCharCode(code));
const anyCodePoint = fc.string({ unit: "binary", minLength: 1, maxLength: 1 });
const adversarialUnit = fc.oneof(controlChar, anyCodePoint, fc.constantFrom("\u0000", "\u0004", "😀", "é", "p"));

/** Keys built to break byte encodings: control characters, astral characters, lengths around 64, shared long prefixes, the byte limit. */
const keyArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "binary", minLength: 1, maxLength: 80 }),
  fc.string({ unit: adversarialUnit, minLength: 1, maxLength: 8 }),
  fc.tuple(fc.integer({ min: 60, max: 68 }), fc.string({ unit: adversarialUnit, maxLength: 6 })).map(([n, tail]) => LONG_PREFIX.slice(0, n) + tail),
  fc.tuple(fc.integer({ min: 0, max: 3 }), fc.string({ unit: controlChar, minLength: 1, maxLength: 4 })).map(([pad, tail]) => (LONG_PREFIX + "p".repeat(pad) + tail)),
  fc.integer({ min: 60, max: 68 }).chain((n) => fc.string({ unit: controlChar, minLength: n, maxLength: n })),
  fc.constantFrom("\u0000".repeat(32), "\u0004\u0000".repeat(32), "\u0000", "\u0004\u0000"),
  fc.constantFrom(MAX_KEY_BYTES, MAX_KEY_BYTES - 1, MAX_KEY_BYTES - 4, LMDB_TIER_MAX_KEY_BYTES).chain((bytes) =>
    fc.constantFrom("x".repeat(bytes), "😀".repeat(Math.floor(bytes / 4)) + "x".repeat(bytes % 4), `${"x".repeat(bytes - 1)}\u0000`),
  ),
);

const nsArb = fc.constantFrom(...NAMESPACES);
const ttlArb = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 20 }));

function commandArb(keyCount: number): fc.Arbitrary<Command> {
  const key = fc.nat({ max: keyCount - 1 });
  const keys = fc.array(key, { minLength: 1, maxLength: 4 });
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant("set" as const), ns: nsArb, key, ttl: ttlArb }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("setMany" as const), ns: nsArb, keys: fc.uniqueArray(key, { minLength: 1, maxLength: 4 }), ttl: ttlArb }) },
    { weight: 6, arbitrary: fc.record({ op: fc.constantFrom("get" as const, "has" as const, "delete" as const, "touch" as const), ns: nsArb, key, ttl: ttlArb }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("getMany" as const, "deleteMany" as const), ns: nsArb, keys }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("clear" as const), ns: nsArb }) },
    { weight: 1, arbitrary: fc.constant({ op: "sweep" as const }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 15 }) }) },
  );
}

/** `key` with every U+0000–U+0004 written as U+0004 and itself: what an escaping encoding produces, as a key of its own. */
const escapedTwin = (key: string) => key.replace(/[\u0000-\u0004]/g, (c) => `\u0004${c}`);

/** Up to 8 distinct keys, some with their escaped twin beside them; then commands over them. */
const scenarioArb = fc
  .tuple(fc.array(keyArb, { minLength: 1, maxLength: 6 }), fc.array(fc.string({ unit: fc.constantFrom("\u0000", "\u0001", "\u0004", "p"), minLength: 20, maxLength: 40 }), { maxLength: 2 }))
  .map(([keys, twinned]) => [...new Set([...keys, ...twinned.flatMap((key) => [key, escapedTwin(key)])])])
  .chain((keys) => fc.tuple(fc.constant(keys), fc.array(commandArb(keys.length), { minLength: 1, maxLength: 40 })));

interface ModelEntry {
  value: string;
  expiresAt: number;
}

/** What a durable tier must do, as plain maps: one per namespace, expired entries kept until deleted, cleared or swept. */
class TierModel {
  readonly #namespaces = new Map<Namespace, Map<string, ModelEntry>>(NAMESPACES.map((ns) => [ns, new Map()]));
  constructor(private readonly now: () => number) {}

  #entries(ns: Namespace): Map<string, ModelEntry> {
    return this.#namespaces.get(ns)!;
  }

  #live(entry: ModelEntry | undefined): entry is ModelEntry {
    return entry !== undefined && (entry.expiresAt === 0 || entry.expiresAt > this.now());
  }

  set(ns: Namespace, key: string, entry: ModelEntry): void {
    this.#entries(ns).set(key, entry);
  }

  get(ns: Namespace, key: string): string | undefined {
    const entry = this.#entries(ns).get(key);
    return this.#live(entry) ? entry.value : undefined;
  }

  delete(ns: Namespace, key: string): boolean {
    const entry = this.#entries(ns).get(key);
    this.#entries(ns).delete(key);
    return this.#live(entry);
  }

  touch(ns: Namespace, key: string, expiresAt: number): boolean {
    const entry = this.#entries(ns).get(key);
    if (!this.#live(entry)) return false;
    entry.expiresAt = expiresAt;
    return true;
  }

  clear(ns: Namespace): void {
    this.#entries(ns).clear();
  }

  sweep(): number {
    let removed = 0;
    for (const entries of this.#namespaces.values()) {
      for (const [key, entry] of entries) {
        if (entry.expiresAt !== 0 && entry.expiresAt <= this.now()) {
          entries.delete(key);
          removed++;
        }
      }
    }
    return removed;
  }
}

async function runScenario(keys: readonly string[], commands: readonly Command[]): Promise<void> {
  const { tier, clock, dispose } = openTier();
  const model = new TierModel(clock.now);
  let written = 0;
  const write = (key: string, ttl: number) => {
    const expiresAt = ttl === 0 ? 0 : clock.now() + ttl;
    const value = `v${++written}`;
    return { write: { key, envelope: envelope(value, expiresAt), expiresAt }, entry: { value, expiresAt } };
  };
  try {
    for (const [step, command] of commands.entries()) {
      const where = `step ${step}: ${JSON.stringify(command)}`;
      switch (command.op) {
        case "set": {
          const { write: w, entry } = write(keys[command.key]!, command.ttl);
          await tier.set(command.ns, w);
          model.set(command.ns, w.key, entry);
          break;
        }
        case "setMany": {
          const writes = command.keys.map((i) => write(keys[i]!, command.ttl));
          await tier.setMany(command.ns, writes.map((w) => w.write));
          for (const w of writes) model.set(command.ns, w.write.key, w.entry);
          break;
        }
        case "get":
          expect(text(await tier.get(command.ns, keys[command.key]!)), where).toBe(model.get(command.ns, keys[command.key]!));
          break;
        case "has":
          expect(await tier.has(command.ns, keys[command.key]!), where).toBe(model.get(command.ns, keys[command.key]!) !== undefined);
          break;
        case "delete":
          expect(await tier.delete(command.ns, keys[command.key]!), where).toBe(model.delete(command.ns, keys[command.key]!));
          break;
        case "touch": {
          const expiresAt = command.ttl === 0 ? 0 : clock.now() + command.ttl;
          expect(await tier.touch(command.ns, keys[command.key]!, expiresAt), where).toBe(model.touch(command.ns, keys[command.key]!, expiresAt));
          break;
        }
        case "getMany": {
          const names = command.keys.map((i) => keys[i]!);
          expect((await tier.getMany(command.ns, names)).map(text), where).toEqual(names.map((key) => model.get(command.ns, key)));
          break;
        }
        case "deleteMany": {
          const names = [...new Set(command.keys.map((i) => keys[i]!))];
          const expected = names.filter((key) => model.delete(command.ns, key)).length;
          expect(await tier.deleteMany(command.ns, names), where).toBe(expected);
          break;
        }
        case "clear":
          await tier.clear(command.ns);
          model.clear(command.ns);
          break;
        case "sweep":
          expect(await tier.sweep(), where).toBe(model.sweep());
          break;
        case "advance":
          clock.advance(command.ms);
          break;
      }
    }
    for (const ns of NAMESPACES) {
      expect((await tier.getMany(ns, keys)).map(text), `final state of ${ns}`).toEqual(keys.map((key) => model.get(ns, key)));
    }
  } finally {
    await dispose();
  }
}

describe("LMDB tier keys: model-based", () => {
  it("behaves like a map per namespace for adversarial keys", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, ([keys, commands]) => runScenario(keys, commands)),
      { numRuns: 100 },
    );
  });
});
