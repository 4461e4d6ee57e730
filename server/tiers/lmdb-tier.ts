import { mkdirSync } from "node:fs";
import { open, type Database, type DatabaseOptions, type RootDatabase } from "lmdb";
import { systemClock, type Clock } from "../../core/clock.js";
import { isFresh, isLive, readExpiresAt, withNewExpiry } from "../../core/envelope.js";
import { isTiercacheError, TierUnavailableError } from "../../core/errors.js";
import type { DurableFootprint, DurableTier, DurableWrite, TagEpochs } from "../engine/durable-tier.js";
import { DataDirLock, DataDirLockedError } from "./data-dir-lock.js";
import { expiredBefore, expiryKey, namespaceRange, parseExpiryKey, valueKey } from "./lmdb-keys.js";

/** Options of {@link LmdbTier.open}. */
export interface LmdbTierOptions {
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

const MARK = Buffer.from([1]);

/** Databases of the byte-exact key encoding (lmdb-keys.ts). */
const VALUES_DB = "values-v2";
const EXPIRY_DB = "expiry-v2";
/** Tag epochs, keyed like values (namespace, tag); the namespace's tag counter under the empty tag (tags are never empty). */
const TAGS_DB = "tags-v1";
/** Databases of the first format, keyed with ordered-binary, which let some keys share a record: dropped on open. */
const LEGACY_DBS = ["values", "expiry"] as const;

function dropLegacyDatabases(root: RootDatabase): void {
  for (const name of LEGACY_DBS) {
    const existingOnly: DatabaseOptions & { name: string; create: boolean } = { name, create: false };
    const legacy: Database | undefined = root.openDB(existingOnly); // undefined when absent (not in lmdb's typings)
    legacy?.dropSync();
  }
}

/**
 * The embedded durable tier: an LMDB environment in a data directory, which
 * it locks for as long as it is open (one store per directory).
 *
 * Values live in one database keyed by namespace and key (see lmdb-keys.ts);
 * an expiry index keyed by expiry time, namespace and key lets a periodic
 * sweep reclaim expired entries without scanning live ones. Reads are
 * synchronous memory-mapped lookups; writes are batched into transactions and
 * resolve once committed, which survives a crash of the server process.
 */
export class LmdbTier implements DurableTier {
  readonly name = "lmdb" as const;
  readonly #lock: DataDirLock;
  readonly #root: RootDatabase;
  readonly #values: Database<Buffer, Buffer>;
  readonly #expiry: Database<Buffer, Buffer>;
  readonly #tags: Database<Buffer, Buffer>;
  readonly #clock: Clock;
  readonly #sweepBatch: number;
  readonly #timer: NodeJS.Timeout;
  #closed = false;

  private constructor(options: LmdbTierOptions, lock: DataDirLock, root: RootDatabase) {
    this.#lock = lock;
    this.#root = root;
    this.#values = root.openDB<Buffer, Buffer>({ name: VALUES_DB, encoding: "binary", keyEncoding: "binary" });
    this.#expiry = root.openDB<Buffer, Buffer>({ name: EXPIRY_DB, encoding: "binary", keyEncoding: "binary" });
    this.#tags = root.openDB<Buffer, Buffer>({ name: TAGS_DB, encoding: "binary", keyEncoding: "binary" });
    this.#clock = options.clock ?? systemClock;
    this.#sweepBatch = options.sweepBatch ?? 10_000;
    this.#timer = setInterval(() => void this.#sweepUntilCaughtUp(), options.sweepIntervalMs ?? 30_000);
    this.#timer.unref();
  }

  /**
   * Opens (or creates) the store in `options.dataDir`, any directory name
   * (dots included). Throws a `TierUnavailableError` when another process,
   * or another open store in this one, holds the directory.
   */
  static open(options: LmdbTierOptions): LmdbTier {
    let lock: DataDirLock | undefined;
    let root: RootDatabase | undefined;
    try {
      mkdirSync(options.dataDir, { recursive: true });
      lock = DataDirLock.acquire(options.dataDir);
      // lmdb-js takes a path with an extension ("cache.v1") for a file name unless told otherwise
      root = open({ path: options.dataDir, noSubdir: false, mapSize: options.mapSize ?? 64 * 1024 ** 3 });
      dropLegacyDatabases(root);
      return new LmdbTier(options, lock, root);
    } catch (err) {
      root?.close().catch(() => undefined);
      lock?.release();
      if (err instanceof DataDirLockedError) throw new TierUnavailableError(err.message, { cause: err });
      throw new TierUnavailableError(`cannot open the LMDB store in ${options.dataDir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Entries in the store (expired ones not yet swept included) and the bytes
   * of the pages holding them, from LMDB's own statistics: O(1), no scan.
   */
  footprint(): DurableFootprint {
    const stats = this.#values.getStats() as { entryCount: number; pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
    return { entries: stats.entryCount, bytes: (stats.treeBranchPageCount + stats.treeLeafPageCount + stats.overflowPages) * stats.pageSize };
  }

  #live(envelope: Buffer | undefined): envelope is Buffer {
    return envelope !== undefined && isLive(envelope, this.#clock());
  }

  #fresh(envelope: Buffer | undefined): envelope is Buffer {
    return envelope !== undefined && isFresh(envelope, this.#clock());
  }

  #read(namespace: string, key: string): Buffer | undefined {
    const envelope = this.#values.get(valueKey(namespace, key));
    return this.#live(envelope) ? envelope : undefined;
  }

  /** Runs `action` in a write transaction of its own, rolled back if it throws (lmdb's `transaction` would commit what ran). */
  async #write<T>(action: () => T): Promise<T> {
    if (this.#closed) throw new TierUnavailableError("the LMDB store is closed");
    try {
      return await this.#values.childTransaction(action);
    } catch (err) {
      if (isTiercacheError(err)) throw err;
      throw new TierUnavailableError(`LMDB store write failed: ${(err as Error).message}`, { cause: err });
    }
  }

  #unindex(id: Buffer, envelope: Buffer | undefined): void {
    if (envelope === undefined) return;
    const expiresAt = readExpiresAt(envelope);
    if (expiresAt !== 0) this.#expiry.remove(expiryKey(expiresAt, id));
  }

  #put(namespace: string, write: DurableWrite): void {
    const id = valueKey(namespace, write.key);
    this.#unindex(id, this.#values.get(id));
    this.#values.put(id, Buffer.from(write.envelope.buffer, write.envelope.byteOffset, write.envelope.byteLength));
    if (write.expiresAt !== 0) this.#expiry.put(expiryKey(write.expiresAt, id), MARK);
  }

  #remove(namespace: string, key: string): boolean {
    const id = valueKey(namespace, key);
    const envelope = this.#values.get(id);
    if (envelope === undefined) return false;
    this.#unindex(id, envelope);
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
    return this.#fresh(this.#values.get(valueKey(namespace, key)));
  }

  async touch(namespace: string, key: string, expiresAt: number): Promise<boolean> {
    return this.#write(() => {
      const envelope = this.#values.get(valueKey(namespace, key));
      if (!this.#fresh(envelope)) return false;
      this.#put(namespace, { key, envelope: withNewExpiry(envelope, expiresAt), expiresAt });
      return true;
    });
  }

  async clear(namespace: string): Promise<void> {
    const range = namespaceRange(namespace);
    let more = true;
    while (more) {
      more = await this.#write(() => {
        const batch = [...this.#values.getRange({ ...range, limit: this.#sweepBatch })];
        for (const { key, value } of batch) {
          this.#unindex(key, value);
          this.#values.remove(key);
        }
        return batch.length === this.#sweepBatch;
      });
    }
  }

  #tagEpoch(namespace: string, tag: string): number {
    const stored = this.#tags.get(valueKey(namespace, tag));
    return stored === undefined ? 0 : stored.readDoubleBE(0);
  }

  async tagEpochs(namespace: string, tags: readonly string[]): Promise<TagEpochs> {
    return { counter: this.#tagEpoch(namespace, ""), epochs: tags.map((tag) => this.#tagEpoch(namespace, tag)) };
  }

  async invalidateTags(namespace: string, tags: readonly string[]): Promise<number> {
    return this.#write(() => {
      const epoch = this.#tagEpoch(namespace, "") + 1;
      const bytes = Buffer.alloc(8);
      bytes.writeDoubleBE(epoch);
      for (const tag of ["", ...tags]) this.#tags.put(valueKey(namespace, tag), bytes);
      return epoch;
    });
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
      for (const key of [...this.#expiry.getKeys({ end: expiredBefore(now), limit: this.#sweepBatch })]) {
        const { expiresAt, value: id } = parseExpiryKey(key);
        const envelope = this.#values.get(id);
        if (envelope !== undefined && readExpiresAt(envelope) === expiresAt) {
          this.#values.remove(id);
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
    try {
      await this.#root.close();
    } finally {
      this.#lock.release();
    }
  }
}
