/**
 * tiercache/keyv: a Keyv (v5) storage adapter backed by a tiercache server.
 *
 * ```ts
 * import Keyv from "keyv";
 * import { TiercacheKeyvStore } from "tiercache/keyv";
 *
 * const users = new Keyv({ store: new TiercacheKeyvStore({ address: "127.0.0.1:50051" }), namespace: "users" });
 * await users.set("1", { name: "Ada" }, 60_000);
 * await users.clear(); // one Clear RPC on the tiercache namespace "users"
 * ```
 *
 * Namespaces: Keyv sets `store.namespace` and hands the store keys of the
 * form `<namespace>:<key>`. The store writes `<key>` to the tiercache
 * namespace {@link tiercacheNamespaceOf}(`<namespace>`), so `clear()` is one
 * Clear RPC on that namespace and other languages see plain keys. Without a
 * Keyv namespace, keys go as they are to the client's namespace.
 *
 * Errors: every method rejects with the client's `RpcError` when a call
 * fails, which is what Keyv expects of a store: Keyv's `set`, `setMany`,
 * `delete`, `deleteMany` and `clear` catch it, emit it as `"error"` and
 * return false (or rethrow with `throwOnErrors`); `has` and `getMany` reject
 * with it. Keyv v5's `get` swallows store errors without emitting them, so a
 * failed `get` is also emitted on the store's `"error"` event, which Keyv
 * forwards: `keyv.on("error", …)` sees each failure once. Keys and TTLs the
 * client refuses (see {@link TiercacheKeyvStore.set}) fail the same way,
 * with INVALID_ARGUMENT, before anything is sent.
 * @module
 */
import { createHash } from "node:crypto";
import { loneSurrogateIndex, NAMESPACE_PATTERN } from "../core/key-rules.js";
import { checkedDuration } from "./argument-checks.js";
import { CacheClient, type CacheClientOptions } from "./cache-client.js";

/** Options shared by both ways of constructing a {@link TiercacheKeyvStore}. */
export interface TiercacheKeyvStoreCommonOptions {
  /**
   * Initial Keyv namespace of the store. Keyv replaces it with its own
   * namespace (Keyv's default is `"keyv"`), so normally pass `namespace` to
   * Keyv instead. When neither gives one, keys go to the client's namespace.
   */
  namespace?: string;
  /** Most keys or entries per GetMany/SetMany/DeleteMany call; larger batches are split. @default 500 */
  batchSize?: number;
}

/** Use an existing client; {@link TiercacheKeyvStore.disconnect} leaves it open. */
export interface TiercacheKeyvStoreClientOptions extends TiercacheKeyvStoreCommonOptions {
  /** The client to call through (its serializer, timeout and default namespace apply). */
  client: CacheClient;
}

/**
 * Create a client from these options (its namespace stays `"default"`);
 * {@link TiercacheKeyvStore.disconnect} closes it.
 */
export type TiercacheKeyvStoreAddressOptions = Omit<CacheClientOptions, "namespace"> & TiercacheKeyvStoreCommonOptions;

/** Options of a {@link TiercacheKeyvStore}: a client, or the options to create one. */
export type TiercacheKeyvStoreOptions = TiercacheKeyvStoreClientOptions | TiercacheKeyvStoreAddressOptions;

/** One entry of {@link TiercacheKeyvStore.setMany}, as Keyv passes it. */
export interface TiercacheKeyvEntry {
  key: string;
  value: unknown;
  /** Time to live in ms, as for {@link TiercacheKeyvStore.set}. */
  ttl?: number | undefined;
}

/** Listener of the store's `"error"` event. */
export type TiercacheKeyvErrorListener = (error: unknown) => void;

/** Names shaped like a mapped one (ending in 8 hex digits, alone or after `-`). */
const MAPPED_SHAPE = /(?:^|-)[0-9a-f]{8}$/;

/**
 * The tiercache namespace of a Keyv namespace. A name that is already valid
 * (1 to 64 characters of `[A-Za-z0-9._-]`, starting with a letter or digit)
 * is used as is, unless it is shaped like a mapped name (below). Any other
 * name becomes its valid characters (others replaced by `_`, leading `.`,
 * `_` and `-` dropped, at most 55 kept), then `-` and the first 8 hex digits
 * of the SHA-256 of the original name (its UTF-8; its UTF-16 code units when
 * it holds a lone surrogate, which UTF-8 cannot tell apart, after a 0xFF
 * byte), so that distinct names stay distinct but for a collision of the
 * 32-bit hash (about one chance in 4 billion for a given pair of names):
 * `"my app/v2"` -> `"my_app_v2-<hash>"`, and `"my_app_v2-<hash>"` itself ->
 * `"my_app_v2-<hash>-<its hash>"`.
 */
export function tiercacheNamespaceOf(keyvNamespace: string): string {
  if (NAMESPACE_PATTERN.test(keyvNamespace) && !MAPPED_SHAPE.test(keyvNamespace)) return keyvNamespace;
  // 0xFF never occurs in UTF-8: the two encodings hashed can never be the same bytes.
  const bytes = loneSurrogateIndex(keyvNamespace) === -1 ? Buffer.from(keyvNamespace, "utf8") : Buffer.concat([Buffer.from([0xff]), Buffer.from(keyvNamespace, "utf16le")]);
  const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 8);
  const cleaned = keyvNamespace
    .replace(/[^A-Za-z0-9._-]/g, "_")
    .replace(/^[._-]+/, "")
    .slice(0, 55);
  return cleaned === "" ? hash : `${cleaned}-${hash}`;
}

/** Where one Keyv key lives in tiercache. */
interface Target {
  /** The tiercache namespace; undefined = the client's. */
  namespace: string | undefined;
  /** Strips the Keyv prefix from a key. */
  key: (keyvKey: string) => string;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * A Keyv v5 storage adapter over a {@link CacheClient}.
 *
 * Values are stored as Keyv hands them over (by default the string Keyv's
 * serializer produced; the raw `{ value, expires }` record when Keyv's
 * serialization is disabled), encoded by the client's serializer, so they
 * come back exactly. TTLs (ms) go to the server, which expires entries itself.
 */
export class TiercacheKeyvStore {
  /** The Keyv namespace; Keyv assigns it. */
  namespace: string | undefined;
  /** Adapter options, as Keyv inspects them. */
  readonly opts: { readonly dialect: "tiercache" } = { dialect: "tiercache" };
  /** The client calls go through. */
  readonly client: CacheClient;
  readonly #ownsClient: boolean;
  readonly #batchSize: number;
  readonly #errorListeners: TiercacheKeyvErrorListener[] = [];
  #target: Target | undefined;
  #targetFor: string | undefined;

  constructor(options: TiercacheKeyvStoreOptions) {
    const batchSize = options.batchSize ?? 500;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    this.#batchSize = batchSize;
    if ("client" in options) {
      this.client = options.client;
      this.#ownsClient = false;
    } else {
      const { namespace: _namespace, batchSize: _batchSize, ...clientOptions } = options;
      this.client = new CacheClient(clientOptions);
      this.#ownsClient = true;
    }
    this.namespace = options.namespace;
  }

  /** The tiercache namespace and key mapping for the current Keyv namespace. */
  #current(): Target {
    const ns = this.namespace === "" ? undefined : this.namespace;
    if (this.#target !== undefined && this.#targetFor === ns) return this.#target;
    let target: Target;
    if (ns === undefined) {
      target = { namespace: undefined, key: (k) => k };
    } else {
      const prefix = `${ns}:`;
      target = { namespace: tiercacheNamespaceOf(ns), key: (k) => (k.startsWith(prefix) ? k.slice(prefix.length) : k) };
    }
    this.#target = target;
    this.#targetFor = ns;
    return target;
  }

  #options(target: Target): { namespace?: string } {
    return target.namespace === undefined ? {} : { namespace: target.namespace };
  }

  /** The stored value, or undefined on a miss. A failure is also emitted as `"error"` (see the module notes). */
  async get<Value>(key: string): Promise<Value | undefined> {
    const target = this.#current();
    try {
      return await this.client.get<Value>(target.key(key), this.#options(target));
    } catch (err) {
      this.#emitError(err);
      throw err;
    }
  }

  /** The stored values, in the order of `keys`; undefined for a miss. */
  async getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    const target = this.#current();
    const stripped = keys.map(target.key);
    const found = new Map<string, Value>();
    await Promise.all(
      chunks(stripped, this.#batchSize).map(async (batch) => {
        for (const [k, v] of await this.client.getMany<Value>(batch, this.#options(target))) found.set(k, v);
      }),
    );
    return stripped.map((k) => found.get(k));
  }

  /**
   * Stores `value` with a TTL of `ttl` ms: absent or 0 = no expiry (the
   * namespace's default on the server); a fraction is rounded up to the next
   * whole ms; negative, NaN, infinite or over 100 years is refused with
   * RpcError INVALID_ARGUMENT.
   */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const target = this.#current();
    await this.client.set(target.key(key), value, { ...this.#options(target), ttl: checkedDuration("ttl", ttl) });
    return true;
  }

  /**
   * Stores several entries, one SetMany call per TTL and batch. A key given
   * more than once is written once, with its last entry.
   */
  async setMany(entries: TiercacheKeyvEntry[]): Promise<boolean[]> {
    const target = this.#current();
    const last = new Map<string, { value: unknown; ttlMs: number }>();
    for (const { key, value, ttl } of entries) {
      const stripped = target.key(key);
      last.set(stripped, { value, ttlMs: checkedDuration("ttl", ttl) });
    }
    const byTtl = new Map<number, Array<[string, unknown]>>();
    for (const [key, { value, ttlMs }] of last) {
      let group = byTtl.get(ttlMs);
      if (group === undefined) byTtl.set(ttlMs, (group = []));
      group.push([key, value]);
    }
    const calls: Promise<unknown>[] = [];
    for (const [ttlMs, group] of byTtl) {
      for (const batch of chunks(group, this.#batchSize)) calls.push(this.client.setMany(batch, { ...this.#options(target), ttl: ttlMs }));
    }
    await Promise.all(calls);
    return entries.map(() => true);
  }

  /** Removes `key`; true when it held a value. */
  async delete(key: string): Promise<boolean> {
    const target = this.#current();
    return this.client.delete(target.key(key), this.#options(target));
  }

  /** Removes `keys`; true when at least one of them held a value. */
  async deleteMany(keys: string[]): Promise<boolean> {
    const target = this.#current();
    const counts = await Promise.all(
      chunks(keys.map(target.key), this.#batchSize).map((batch) => this.client.deleteMany(batch, this.#options(target))),
    );
    return counts.some((n) => n > 0);
  }

  /** True when `key` holds an unexpired value. */
  async has(key: string): Promise<boolean> {
    const target = this.#current();
    return this.client.has(target.key(key), this.#options(target));
  }

  /** Removes every key of the namespace with one Clear RPC (the client's namespace when Keyv has none). */
  async clear(): Promise<void> {
    await this.client.clear(this.#options(this.#current()));
  }

  /** Closes the client if the store created it; a client passed in stays open. */
  async disconnect(): Promise<void> {
    if (this.#ownsClient) this.client.close();
  }

  /** Registers a listener; only `"error"` is ever emitted (Keyv subscribes to it). */
  on(event: string, listener: TiercacheKeyvErrorListener): this {
    if (event === "error") this.#errorListeners.push(listener);
    return this;
  }

  /** Removes a listener added with {@link on}. */
  off(event: string, listener: TiercacheKeyvErrorListener): this {
    const index = event === "error" ? this.#errorListeners.indexOf(listener) : -1;
    if (index !== -1) this.#errorListeners.splice(index, 1);
    return this;
  }

  /** Unlike Node's EventEmitter, an error with no listener is not thrown: the call rejects anyway. */
  #emitError(error: unknown): void {
    for (const listener of [...this.#errorListeners]) listener(error);
  }
}
