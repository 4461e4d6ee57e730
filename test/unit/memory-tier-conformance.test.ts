import { isFresh, withNewExpiry } from "../../core/envelope.js";
import { MemoryTier } from "../../core/memory-tier.js";
import type { DurableTier, DurableWrite } from "../../server/engine/durable-tier.js";
import { describeDurableTier } from "../conformance/durable-tier-suite.js";
import type { FakeClock } from "../helpers/fake-clock.js";

/** The memory tier seen through the tier interface (one MemoryTier per namespace), so it runs the shared suite. */
class MemoryTierAsDurable implements DurableTier {
  readonly name = "lmdb" as const;
  readonly #tiers = new Map<string, MemoryTier<Uint8Array>>();
  constructor(private readonly clock: FakeClock) {}
  #tier(ns: string) {
    let tier = this.#tiers.get(ns);
    if (!tier) this.#tiers.set(ns, (tier = new MemoryTier<Uint8Array>({ maxEntries: 100_000, maxBytes: 64 << 20, clock: this.clock.now })));
    return tier;
  }
  async get(ns: string, key: string) {
    return this.#tier(ns).get(key);
  }
  async getMany(ns: string, keys: readonly string[]) {
    return keys.map((k) => this.#tier(ns).get(k));
  }
  async set(ns: string, w: DurableWrite) {
    this.#tier(ns).set(w.key, w.envelope, w.expiresAt);
  }
  async setMany(ns: string, ws: readonly DurableWrite[]) {
    for (const w of ws) this.#tier(ns).set(w.key, w.envelope, w.expiresAt);
  }
  #fresh(ns: string, key: string) {
    const value = this.#tier(ns).peek(key);
    return value !== undefined && isFresh(value, this.clock.now()) ? value : undefined;
  }
  async delete(ns: string, key: string) {
    const had = this.#fresh(ns, key) !== undefined;
    this.#tier(ns).delete(key);
    return had;
  }
  async deleteMany(ns: string, keys: readonly string[]) {
    let n = 0;
    for (const k of keys) if (await this.delete(ns, k)) n++;
    return n;
  }
  async has(ns: string, key: string) {
    return this.#fresh(ns, key) !== undefined;
  }
  async touch(ns: string, key: string, expiresAt: number) {
    const value = this.#fresh(ns, key);
    if (value === undefined) return false;
    return this.#tier(ns).set(key, withNewExpiry(value, expiresAt), expiresAt);
  }
  async clear(ns: string) {
    this.#tier(ns).clear();
  }
  readonly #tagEpochs = new Map<string, number>();
  async tagEpochs(ns: string, tags: readonly string[]) {
    return { counter: this.#tagEpochs.get(ns) ?? 0, epochs: tags.map((tag) => this.#tagEpochs.get(`${ns}\u0000${tag}`) ?? 0) };
  }
  async invalidateTags(ns: string, tags: readonly string[]) {
    const epoch = (this.#tagEpochs.get(ns) ?? 0) + 1;
    this.#tagEpochs.set(ns, epoch);
    for (const tag of tags) this.#tagEpochs.set(`${ns}\u0000${tag}`, epoch);
    return epoch;
  }
  async close() {}
}

describeDurableTier("memory tier", async (clock) => ({ tier: new MemoryTierAsDurable(clock), dispose: async () => {} }));
