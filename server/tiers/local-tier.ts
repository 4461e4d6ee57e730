import { mkdirSync } from "node:fs";
import { open, type Database, type RootDatabase } from "lmdb";
import { systemClock, type Clock } from "../../core/clock.js";
import { ValueCodec } from "../../core/codec.js";
import { isFresh, isLive, withNewExpiry } from "../../core/envelope.js";
import { TierUnavailableError } from "../../core/errors.js";
import type { DurableTier, DurableWrite } from "../engine/durable-tier.js";

/** Options of {@link LocalTier.open}. */
export interface LocalTierOptions {
  /** Directory of the LMDB environment; created when missing. */
  dataDir: string;
  clock?: Clock;
  /** How often expired entries are reclaimed, in ms. @default 30000 */
  sweepIntervalMs?: number;
  /** Most expired entries reclaimed per sweep transaction. @default 10000 */
  sweepBatch?: number;
  /** LMDB map size in bytes (the store's largest size; sparse on disk). @default 64 GiB */
  mapSize?: number;
}

type ValueKey = [namespace: string, key: string];
type ExpiryKey = [expiresAt: number, namespace: string, key: string];

const MARK = Buffer.from([1]);

/**
 * The embedded durable tier: an LMDB environment in a data directory.
 *
 * Values live in one database keyed by [namespace, key]; an expiry index keyed
 * by [expiresAt, namespace, key] lets a periodic sweep reclaim expired entries
 * without scanning live ones. Reads are synchronous memory-mapped lookups;
 * writes are batched into transactions and resolve once committed, which
 * survives a crash of the server process.
 */
export class LocalTier implements DurableTier {
  readonly name = "local" as const;
  readonly #root: RootDatabase;
  readonly #values: Database<Buffer, ValueKey>;
  readonly #expiry: Database<Buffer, ExpiryKey>;
  readonly #clock: Clock;
  readonly #sweepBatch: number;
  readonly #timer: NodeJS.Timeout;
  #closed = false;

  private constructor(options: LocalTierOptions) {
    mkdirSync(options.dataDir, { recursive: true });
    this.#root = open({ path: options.dataDir, mapSize: options.mapSize ?? 64 * 1024 ** 3 });
    this.#values = this.#root.openDB<Buffer, ValueKey>({ name: "values", encoding: "binary", keyEncoding: "ordered-binary" });
    this.#expiry = this.#root.openDB<Buffer, ExpiryKey>({ name: "expiry", encoding: "binary", keyEncoding: "ordered-binary" });
    this.#clock = options.clock ?? systemClock;
    this.#sweepBatch = options.sweepBatch ?? 10_000;
    this.#timer = setInterval(() => void this.#sweepUntilCaughtUp(), options.sweepIntervalMs ?? 30_000);
    this.#timer.unref();
  }

  /** Opens (or creates) the store in `options.dataDir`. */
  static open(options: LocalTierOptions): LocalTier {
    try {
      return new LocalTier(options);
    } catch (err) {
      throw new TierUnavailableError(`cannot open the local store in ${options.dataDir}: ${(err as Error).message}`, { cause: err });
    }
  }

  #live(envelope: Buffer | undefined): envelope is Buffer {
    return envelope !== undefined && isLive(envelope, this.#clock());
  }

  #fresh(envelope: Buffer | undefined): envelope is Buffer {
    return envelope !== undefined && isFresh(envelope, this.#clock());
  }

  #read(namespace: string, key: string): Buffer | undefined {
    const envelope = this.#values.get([namespace, key]);
    return this.#live(envelope) ? envelope : undefined;
  }

  async #write<T>(action: () => T): Promise<T> {
    if (this.#closed) throw new TierUnavailableError("the local store is closed");
    try {
      return await this.#values.transaction(action);
    } catch (err) {
      throw new TierUnavailableError(`local store write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  #unindex(namespace: string, key: string, envelope: Buffer | undefined): void {
    if (envelope === undefined) return;
    const expiresAt = ValueCodec.expiresAt(envelope);
    if (expiresAt !== 0) this.#expiry.remove([expiresAt, namespace, key]);
  }

  #put(namespace: string, write: DurableWrite): void {
    const id: ValueKey = [namespace, write.key];
    this.#unindex(namespace, write.key, this.#values.get(id));
    this.#values.put(id, Buffer.from(write.envelope.buffer, write.envelope.byteOffset, write.envelope.byteLength));
    if (write.expiresAt !== 0) this.#expiry.put([write.expiresAt, namespace, write.key], MARK);
  }

  #remove(namespace: string, key: string): boolean {
    const id: ValueKey = [namespace, key];
    const envelope = this.#values.get(id);
    if (envelope === undefined) return false;
    this.#unindex(namespace, key, envelope);
    this.#values.remove(id);
    return this.#fresh(envelope);
  }

  async get(namespace: string, key: string): Promise<Uint8Array | undefined> {
    return this.#read(namespace, key);
  }

  async getMany(namespace: string, keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return keys.map((key) => this.#read(namespace, key));
  }

  async set(namespace: string, write: DurableWrite): Promise<void> {
    await this.#write(() => this.#put(namespace, write));
  }

  async setMany(namespace: string, writes: readonly DurableWrite[]): Promise<void> {
    await this.#write(() => {
      for (const write of writes) this.#put(namespace, write);
    });
  }

  async delete(namespace: string, key: string): Promise<boolean> {
    return this.#write(() => this.#remove(namespace, key));
  }

  async deleteMany(namespace: string, keys: readonly string[]): Promise<number> {
    return this.#write(() => keys.filter((key) => this.#remove(namespace, key)).length);
  }

  async has(namespace: string, key: string): Promise<boolean> {
    return this.#fresh(this.#values.get([namespace, key]));
  }

  async touch(namespace: string, key: string, expiresAt: number): Promise<boolean> {
    return this.#write(() => {
      const envelope = this.#values.get([namespace, key]);
      if (!this.#fresh(envelope)) return false;
      this.#put(namespace, { key, envelope: withNewExpiry(envelope, expiresAt), expiresAt });
      return true;
    });
  }

  async clear(namespace: string): Promise<void> {
    let more = true;
    while (more) {
      more = await this.#write(() => {
        let removed = 0;
        for (const { key, value } of this.#values.getRange({ start: [namespace] })) {
          if (key[0] !== namespace) return false;
          if (removed === this.#sweepBatch) return true;
          this.#unindex(namespace, key[1], value);
          this.#values.remove(key);
          removed++;
        }
        return false;
      });
    }
  }

  #sweeping = false;

  /** Sweeps batch after batch (yielding between them) while full batches come back, so expiry keeps up with any rate. */
  async #sweepUntilCaughtUp(): Promise<void> {
    if (this.#sweeping) return;
    this.#sweeping = true;
    try {
      while (!this.#closed && (await this.sweep()) >= this.#sweepBatch) await new Promise((resolve) => setImmediate(resolve));
    } catch {
      // a failed sweep is retried at the next interval
    } finally {
      this.#sweeping = false;
    }
  }

  /** Reclaims up to one batch of expired entries; returns how many were removed. */
  async sweep(): Promise<number> {
    if (this.#closed) return 0;
    const now = this.#clock();
    return this.#write(() => {
      let removed = 0;
      for (const { key } of this.#expiry.getRange({ end: [now + 1], limit: this.#sweepBatch })) {
        const [expiresAt, namespace, name] = key;
        const envelope = this.#values.get([namespace, name]);
        if (envelope !== undefined && ValueCodec.expiresAt(envelope) === expiresAt) {
          this.#values.remove([namespace, name]);
          removed++;
        }
        this.#expiry.remove(key);
      }
      return removed;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#root.close();
  }
}
