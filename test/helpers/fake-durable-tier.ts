import { TierUnavailableError } from "../../core/errors.js";
import { isFresh, isLive, withNewExpiry } from "../../core/envelope.js";
import type { Clock } from "../../core/clock.js";
import type { DurableTier, DurableWrite } from "../../server/engine/durable-tier.js";

/** An in-memory DurableTier that counts calls and can be made to fail or stall. */
export class FakeDurableTier implements DurableTier {
  readonly name = "lmdb" as const;
  readonly data = new Map<string, Uint8Array>();
  readonly calls = { get: 0, getMany: 0, set: 0 };
  failWrites = false;
  /** When set, reads wait for this promise first. */
  gate: Promise<void> | undefined;

  constructor(private readonly clock: Clock) {}

  #id(ns: string, key: string) {
    return `${ns}\u0000${key}`;
  }
  #live(ns: string, key: string) {
    const env = this.data.get(this.#id(ns, key));
    if (!env) return undefined;
    return isLive(env, this.clock()) ? env : undefined;
  }
  #fresh(ns: string, key: string) {
    const env = this.data.get(this.#id(ns, key));
    return env !== undefined && isFresh(env, this.clock()) ? env : undefined;
  }
  async get(ns: string, key: string) {
    this.calls.get++;
    await this.gate;
    return this.#live(ns, key);
  }
  async getMany(ns: string, keys: readonly string[]) {
    this.calls.getMany++;
    await this.gate;
    return keys.map((k) => this.#live(ns, k));
  }
  async set(ns: string, write: DurableWrite) {
    await this.setMany(ns, [write]);
  }
  async setMany(ns: string, writes: readonly DurableWrite[]) {
    this.calls.set++;
    if (this.failWrites) throw new TierUnavailableError("injected write failure");
    for (const w of writes) this.data.set(this.#id(ns, w.key), w.envelope);
  }
  async delete(ns: string, key: string) {
    const had = this.#fresh(ns, key) !== undefined;
    this.data.delete(this.#id(ns, key));
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
    const env = this.#fresh(ns, key);
    if (!env) return false;
    this.data.set(this.#id(ns, key), withNewExpiry(env, expiresAt));
    return true;
  }
  async clear(ns: string) {
    for (const id of [...this.data.keys()]) if (id.startsWith(`${ns}\u0000`)) this.data.delete(id);
  }
  readonly tagCounters = new Map<string, number>();
  async tagEpochs(ns: string, tags: readonly string[]) {
    return { counter: this.tagCounters.get(ns) ?? 0, epochs: tags.map((tag) => this.tagCounters.get(`${ns}\u0000${tag}`) ?? 0) };
  }
  async invalidateTags(ns: string, tags: readonly string[]) {
    if (this.failWrites) throw new TierUnavailableError("injected write failure");
    const epoch = (this.tagCounters.get(ns) ?? 0) + 1;
    this.tagCounters.set(ns, epoch);
    for (const tag of tags) this.tagCounters.set(`${ns}\u0000${tag}`, epoch);
    return epoch;
  }
  async close() {}
}
