import { RpcError, Status } from "../core/rpc-error.js";

/** Options of `wrap` / `getOrSet` / `cached`. */
export interface WrapOptions {
  /** Namespace; defaults to the client's. */
  namespace?: string;
  /** Time to live of a loaded value, in ms; 0 or absent = the namespace default. */
  ttl?: number;
  /** After the TTL, keep serving the old value this long (ms) while one caller refreshes it. @default 0 */
  grace?: number;
  /** Cache a loader's `undefined` ("nothing there") for this long, in ms; not cached when absent. */
  negativeTtl?: number;
  /** Serve a stale value at once and refresh in the background (within grace). @default true */
  staleWhileRevalidate?: boolean;
  /** With a stale value and staleWhileRevalidate off: wait this long (ms) for the loader, then serve stale. */
  softTimeout?: number;
  /** Give up on the loader after this long (ms): serve stale if there is one, else reject with LoaderTimeoutError. */
  hardTimeout?: number;
  /** Ask the server for a lease so one client computes a missing key. @default true */
  lease?: boolean;
  /** How long callers in other clients wait for the lease holder's value, in ms. @default 2000 */
  leaseWaitMs?: number;
}

/** The loader did not finish within `hardTimeout`. */
export class LoaderTimeoutError extends Error {
  override readonly name = "LoaderTimeoutError";
  constructor(key: string, ms: number) {
    super(`loader for ${JSON.stringify(key)} did not finish within ${ms} ms`);
  }
}

/** What the server answered to GetOrLease, decoded. */
export interface LeaseRead {
  found: boolean;
  value: unknown;
  stale: boolean;
  leaseToken: string;
}

/** What `wrap` needs from the client. */
export interface WrapBackend {
  getOrLease(namespace: string, key: string, leaseMs: number, waitMs: number): Promise<LeaseRead>;
  store(namespace: string, key: string, value: unknown, options: { ttl: number; grace: number; leaseToken: string }): Promise<void>;
  releaseLease(namespace: string, key: string, token: string): Promise<void>;
  /** A fresh local copy, if the local tier holds one. */
  local(namespace: string, key: string): { found: boolean; value: unknown };
}

const TIMED_OUT = Symbol("timed out");

function within<T>(promise: Promise<T>, ms: number | undefined): Promise<T | typeof TIMED_OUT> {
  if (ms === undefined) return promise;
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

/**
 * Runs loaders for missing keys: one run per key at a time in this client
 * (concurrent callers share it), one across clients through server leases,
 * stale-while-revalidate within grace, soft and hard loader timeouts, and
 * negative caching of `undefined`.
 */
export class Wrapper {
  readonly #backend: WrapBackend;
  readonly #flights = new Map<string, Promise<unknown>>();
  readonly #refreshing = new Set<string>();

  constructor(backend: WrapBackend) {
    this.#backend = backend;
  }

  /** The cached value of `key`, or the loader's result (stored for next time). */
  wrap<T>(namespace: string, key: string, loader: () => T | Promise<T>, options: WrapOptions): Promise<T> {
    const local = this.#backend.local(namespace, key);
    if (local.found) return Promise.resolve(local.value as T);
    const id = `${namespace}\u0000${key}`;
    const flight = this.#flights.get(id);
    if (flight) return flight as Promise<T>;
    const run = this.#run(namespace, key, loader, options).finally(() => this.#flights.delete(id));
    this.#flights.set(id, run);
    return run;
  }

  async #run<T>(namespace: string, key: string, loader: () => T | Promise<T>, options: WrapOptions): Promise<T> {
    const leaseMs = Math.max(1, Math.min(600_000, options.hardTimeout ?? 10_000));
    let read: LeaseRead;
    try {
      read = options.lease === false
        ? await this.#backend.getOrLease(namespace, key, leaseMs, 0)
        : await this.#backend.getOrLease(namespace, key, leaseMs, options.leaseWaitMs ?? 2000);
    } catch (err) {
      if (!RpcError.is(err, Status.UNAVAILABLE) && !RpcError.is(err, Status.DEADLINE_EXCEEDED)) throw err;
      return (await this.#load(namespace, key, loader, options, "")) as T;
    }
    if (read.found && !read.stale) return read.value as T;
    if (read.found) {
      if (options.staleWhileRevalidate !== false) {
        if (read.leaseToken) this.#refreshInBackground(namespace, key, loader, options, read.leaseToken);
        return read.value as T;
      }
      const fresh = this.#load(namespace, key, loader, options, read.leaseToken);
      const result = await within(fresh, options.softTimeout).catch(() => TIMED_OUT);
      if (result === TIMED_OUT) {
        fresh.catch(() => {});
        return read.value as T;
      }
      return result as T;
    }
    return (await this.#load(namespace, key, loader, options, read.leaseToken)) as T;
  }

  #refreshInBackground<T>(namespace: string, key: string, loader: () => T | Promise<T>, options: WrapOptions, token: string): void {
    const id = `${namespace}\u0000${key}`;
    if (this.#refreshing.has(id)) return;
    this.#refreshing.add(id);
    this.#load(namespace, key, loader, options, token)
      .catch(() => {})
      .finally(() => this.#refreshing.delete(id));
  }

  /** Runs the loader (within hardTimeout) and stores its result; gives the lease back when it fails. */
  async #load<T>(namespace: string, key: string, loader: () => T | Promise<T>, options: WrapOptions, leaseToken: string): Promise<T> {
    let value: T | typeof TIMED_OUT;
    try {
      value = await within(Promise.resolve().then(loader), options.hardTimeout);
      if (value === TIMED_OUT) throw new LoaderTimeoutError(key, options.hardTimeout!);
    } catch (err) {
      if (leaseToken) await this.#backend.releaseLease(namespace, key, leaseToken).catch(() => {});
      throw err;
    }
    if (value === undefined && options.negativeTtl === undefined) {
      if (leaseToken) await this.#backend.releaseLease(namespace, key, leaseToken).catch(() => {});
      return value;
    }
    const ttl = value === undefined ? options.negativeTtl! : (options.ttl ?? 0);
    const grace = value === undefined ? 0 : (options.grace ?? 0);
    try {
      await this.#backend.store(namespace, key, value, { ttl, grace, leaseToken });
    } catch {
      // The value is still the caller's answer; the lease goes back so others need not wait for it.
      if (leaseToken) await this.#backend.releaseLease(namespace, key, leaseToken).catch(() => {});
    }
    return value;
  }
}
