import { MAX_TIMER_MS } from "../core/clock.js";
import { RpcError, Status } from "../core/rpc-error.js";
import { MAX_TAGS_PER_ENTRY } from "../core/tag-rules.js";
import { checkedDuration, checkedTags } from "./argument-checks.js";
import { LoaderContext, runInContext, type WrapContext } from "./wrap-context.js";

/** Options of `wrap` / `getOrSet` / `cached`. */
export interface WrapOptions {
  /** Namespace; defaults to the client's. */
  namespace?: string;
  /**
   * Time to live of a loaded value, in ms; 0 or absent = the namespace
   * default. Like `grace` and `negativeTtl`: a fraction is rounded up to the
   * next whole ms; negative, NaN, infinite or over 100 years is INVALID_ARGUMENT.
   */
  ttl?: number;
  /** After the TTL, keep serving the old value this long (ms) while one caller refreshes it. @default 0 */
  grace?: number;
  /** Cache a loader's `undefined` ("nothing there") for this long, in ms; not cached when absent. */
  negativeTtl?: number;
  /** Serve a stale value at once and refresh in the background (within grace). @default true */
  staleWhileRevalidate?: boolean;
  /**
   * With a stale value and staleWhileRevalidate off: how long (ms) to wait for
   * the loader, or for another client's loader run, before serving the stale
   * value. @default leaseWaitMs
   */
  softTimeout?: number;
  /** Give up on the loader after this long (ms): serve stale if there is one, else reject with LoaderTimeoutError. */
  hardTimeout?: number;
  /** Tags of the value the loader returns (at most 16, each 1 to 128 UTF-8 bytes), for `invalidateTags`; `ctx.setTags` replaces them per call. */
  tags?: readonly string[];
  /** Ask the server for a lease so one client computes a missing key. @default true */
  lease?: boolean;
  /** How long callers in other clients wait for the lease holder's value, in ms (at most 60000). @default 2000 */
  leaseWaitMs?: number;
  /**
   * How long one loader run holds its key, in ms (at most 600000): the server
   * lease lasts this long, and callers of this client that join the run stop
   * waiting for it after this long (counted from its start) and run the
   * loader themselves, so a loader that never settles cannot block its key.
   * @default hardTimeout, else 10000
   */
  leaseMs?: number;
  /**
   * Eager refresh, as a fraction of `ttl` (above 0, below 1; needs a `ttl`):
   * a hit after this share of the TTL is returned at once and starts one
   * background refresh of the key, one across all clients (through the
   * server lease). A failed refresh keeps the current value until it expires.
   */
  eagerRefresh?: number;
}

/** How long a run holds its key when neither `leaseMs` nor `hardTimeout` says. */
export const DEFAULT_LEASE_MS = 10_000;
const MAX_LEASE_MS = 600_000;
const MAX_LEASE_WAIT_MS = 60_000;

/** WrapOptions checked once: durations in whole ms, defaults applied. */
export interface ResolvedWrapOptions {
  ttl: number;
  grace: number;
  /** undefined: a loader's `undefined` is not cached. */
  negativeTtl: number | undefined;
  staleWhileRevalidate: boolean;
  softTimeout: number | undefined;
  hardTimeout: number | undefined;
  lease: boolean;
  leaseWaitMs: number;
  leaseMs: number;
  tags: readonly string[] | undefined;
  /** With eagerRefresh: a hit with at most this many ms left before it goes stale is refreshed early; 0 = never. */
  refreshAheadMs: number;
}

function refreshAhead(eagerRefresh: number | undefined, ttl: number): number {
  if (eagerRefresh === undefined) return 0;
  if (typeof eagerRefresh !== "number" || !(eagerRefresh > 0 && eagerRefresh < 1)) {
    throw new RpcError(Status.INVALID_ARGUMENT, `eagerRefresh ${String(eagerRefresh)} is out of range: use a fraction of the ttl above 0 and below 1`);
  }
  if (ttl === 0) throw new RpcError(Status.INVALID_ARGUMENT, "eagerRefresh needs a ttl: it is a fraction of it");
  return Math.max(1, Math.min(0xffff_ffff, Math.round(ttl * (1 - eagerRefresh))));
}

function checkedLimit(name: string, ms: number | undefined, min: number, max: number): number | undefined {
  if (ms === undefined) return undefined;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < min || ms > max) {
    throw new RpcError(Status.INVALID_ARGUMENT, `${name} ${String(ms)} is out of range: use a number of ms from ${min} up to ${max}`);
  }
  return Math.ceil(ms);
}

/** Checks and resolves WrapOptions; throws RpcError INVALID_ARGUMENT naming the option that is out of range. */
export function resolveWrapOptions(options: WrapOptions): ResolvedWrapOptions {
  const hardTimeout = checkedLimit("hardTimeout", options.hardTimeout, 0, MAX_TIMER_MS);
  const ttl = checkedDuration("ttl", options.ttl);
  return {
    ttl,
    refreshAheadMs: refreshAhead(options.eagerRefresh, ttl),
    grace: checkedDuration("grace", options.grace),
    negativeTtl: options.negativeTtl === undefined ? undefined : checkedDuration("negativeTtl", options.negativeTtl),
    staleWhileRevalidate: options.staleWhileRevalidate ?? true,
    softTimeout: checkedLimit("softTimeout", options.softTimeout, 0, MAX_TIMER_MS),
    hardTimeout,
    lease: options.lease ?? true,
    leaseWaitMs: checkedLimit("leaseWaitMs", options.leaseWaitMs, 0, MAX_LEASE_WAIT_MS) ?? 2000,
    leaseMs: checkedLimit("leaseMs", options.leaseMs, 1, MAX_LEASE_MS) ?? Math.max(1, Math.min(MAX_LEASE_MS, hardTimeout ?? DEFAULT_LEASE_MS)),
    tags: options.tags === undefined ? undefined : checkedTags(options.tags, MAX_TAGS_PER_ENTRY, "a value"),
  };
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
  /** With a fresh value: the caller should refresh it early (eager refresh); else it should compute it. */
  leaseToken: string;
  /** The namespace's TTL jitter in parts per million (rounded up): a write's TTL may be this much shorter than asked. */
  ttlJitterPpm: number;
}

/** What a run of the loader takes from GetOrLease's answer. */
type LeaseGrant = Pick<LeaseRead, "leaseToken" | "ttlJitterPpm">;

/** The grant of a run that did not reach the server. */
const NO_GRANT: LeaseGrant = { leaseToken: "", ttlJitterPpm: 0 };

/** A loader: computes the value of a missing key; may tune how it is cached through its context. */
export type Loader<T> = (ctx: WrapContext) => T | Promise<T>;

/** How a loaded value is written. */
export interface StoreOptions {
  ttl: number;
  grace: number;
  leaseToken: string;
  /** From GetOrLease's answer: the server may shorten `ttl` by up to this many parts per million. */
  ttlJitterPpm: number;
  /** From ctx.setTags; undefined when the loader set none. */
  tags: readonly string[] | undefined;
}

/** What a background part of `wrap` was doing when it failed. */
export type WrapTask = "write" | "refresh";

/** What `wrap` needs from the client. */
export interface WrapBackend {
  /**
   * GetOrLease; `waitOnStale`: on a stale value whose lease another caller
   * holds, wait up to `waitMs` for its value; `refreshAheadMs`: see
   * ResolvedWrapOptions.
   */
  getOrLease(namespace: string, key: string, leaseMs: number, waitMs: number, waitOnStale: boolean, refreshAheadMs: number): Promise<LeaseRead>;
  /**
   * Keeps `value` as the key's local copy at once (when the local tier may
   * serve the namespace), then writes it; the promise settles with the write,
   * and the local copy is dropped if the write fails. Throws at once, writing
   * nothing, when the value cannot be encoded.
   */
  store(namespace: string, key: string, value: unknown, options: StoreOptions): Promise<void>;
  releaseLease(namespace: string, key: string, token: string): Promise<void>;
  /** A fresh local copy, if the local tier holds one; `due`: it has at most `refreshAheadMs` left (0 = never due). */
  local(namespace: string, key: string, refreshAheadMs: number): { found: boolean; value: unknown; due: boolean };
  /** A background write or refresh failed (the caller already has its value). */
  failed(task: WrapTask, namespace: string, key: string, err: unknown): void;
}
const TIMED_OUT = Symbol("timed out");

function within<T>(promise: Promise<T>, ms: number | undefined): Promise<T | typeof TIMED_OUT> {
  if (ms === undefined) return promise;
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

function unreachable(err: unknown): boolean {
  return RpcError.is(err, Status.UNAVAILABLE) || RpcError.is(err, Status.DEADLINE_EXCEEDED);
}

/** One loader run of a key in this client, which callers of the key join until `endsAt`. */
interface Flight {
  promise: Promise<unknown>;
  endsAt: number;
  /** Resolves at `endsAt` unless the run settled first; one timer however many callers join. */
  expiry?: Promise<typeof TIMED_OUT>;
}

function expiryOf(flight: Flight): Promise<typeof TIMED_OUT> {
  flight.expiry ??= new Promise((resolve) => {
    const timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, flight.endsAt - Date.now()));
    const stop = () => clearTimeout(timer);
    flight.promise.then(stop, stop);
  });
  return flight.expiry;
}

/**
 * Runs loaders for missing keys: one run per key at a time in this client
 * (concurrent callers share it, for at most its `leaseMs`), one across
 * clients through server leases, stale-while-revalidate within grace, soft
 * and hard loader timeouts, and negative caching of `undefined`.
 */
export class Wrapper {
  readonly #backend: WrapBackend;
  readonly #flights = new Map<string, Flight>();
  readonly #refreshing = new Set<string>();
  /** Background writes and refreshes in flight. */
  readonly #background = new Set<Promise<unknown>>();

  constructor(backend: WrapBackend) {
    this.#backend = backend;
  }

  /** Resolves when the background writes and refreshes started so far have settled (never rejects). */
  async settled(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.then(
      () => {},
      () => {},
    );
    this.#background.add(tracked);
    void tracked.finally(() => this.#background.delete(tracked));
  }

  /** The cached value of `key`, or the loader's result (stored for next time). */
  wrap<T>(namespace: string, key: string, loader: Loader<T>, resolved: ResolvedWrapOptions): Promise<T> {
    const local = this.#backend.local(namespace, key, resolved.refreshAheadMs);
    if (local.found) {
      if (local.due) this.#refreshEarly(namespace, key, loader, resolved);
      return Promise.resolve(local.value as T);
    }
    const id = `${namespace}\u0000${key}`;
    const flight = this.#flights.get(id);
    if (flight) return namingCallers(this.#join(id, flight, namespace, key, loader, resolved) as Promise<T>);
    const started: Flight = { promise: Promise.resolve(), endsAt: Date.now() + resolved.leaseMs };
    started.promise = this.#run(namespace, key, loader, resolved).finally(() => {
      if (this.#flights.get(id) === started) this.#flights.delete(id);
    });
    this.#flights.set(id, started);
    return namingCallers(started.promise as Promise<T>);
  }

  /** Waits for a run in flight until its lease ends; then, if it is still the key's run, starts another. */
  async #join<T>(id: string, flight: Flight, namespace: string, key: string, loader: Loader<T>, options: ResolvedWrapOptions): Promise<T> {
    const result = await Promise.race([flight.promise, expiryOf(flight)]);
    if (result !== TIMED_OUT) return result as T;
    if (this.#flights.get(id) === flight) this.#flights.delete(id);
    return this.wrap(namespace, key, loader, options);
  }

  async #run<T>(namespace: string, key: string, loader: Loader<T>, options: ResolvedWrapOptions): Promise<T> {
    let read: LeaseRead;
    try {
      read = await this.#backend.getOrLease(namespace, key, options.leaseMs, options.lease ? options.leaseWaitMs : 0, false, options.refreshAheadMs);
      if (read.found && read.stale && !read.leaseToken && !options.staleWhileRevalidate && options.lease) {
        const waitMs = Math.min(MAX_LEASE_WAIT_MS, options.softTimeout ?? options.leaseWaitMs);
        read = await this.#backend.getOrLease(namespace, key, options.leaseMs, waitMs, true, 0).catch((err: unknown) => {
          if (unreachable(err)) return read;
          throw err;
        });
      }
    } catch (err) {
      if (!unreachable(err)) throw err;
      return (await this.#load(namespace, key, loader, options, NO_GRANT, false)) as T;
    }
    if (read.found && !read.stale) {
      if (read.leaseToken) this.#refreshInBackground(namespace, key, loader, options, read);
      return read.value as T;
    }
    if (read.found) {
      if (options.staleWhileRevalidate) {
        if (read.leaseToken) this.#refreshInBackground(namespace, key, loader, options, read);
        return read.value as T;
      }
      // Another caller holds the lease and did not bring a fresh value within softTimeout.
      if (!read.leaseToken && options.lease) return read.value as T;
      const fresh = this.#load(namespace, key, loader, options, read);
      const result = await within(fresh, options.softTimeout ?? options.leaseWaitMs).catch(() => TIMED_OUT);
      if (result === TIMED_OUT) {
        fresh.catch(() => {});
        return read.value as T;
      }
      return result as T;
    }
    return (await this.#load(namespace, key, loader, options, read)) as T;
  }

  #refreshInBackground<T>(namespace: string, key: string, loader: Loader<T>, options: ResolvedWrapOptions, grant: LeaseGrant): void {
    const id = `${namespace}\u0000${key}`;
    if (this.#refreshing.has(id)) return;
    this.#refreshing.add(id);
    this.#track(
      this.#load(namespace, key, loader, options, grant)
        .catch((err: unknown) => this.#backend.failed("refresh", namespace, key, err))
        .finally(() => this.#refreshing.delete(id)),
    );
  }

  /**
   * Eager refresh of a local hit: asks the server for the lease (one caller
   * across clients gets it while the value is due) and refreshes only with it.
   */
  #refreshEarly<T>(namespace: string, key: string, loader: Loader<T>, options: ResolvedWrapOptions): void {
    const id = `${namespace}\u0000${key}`;
    if (this.#refreshing.has(id)) return;
    this.#refreshing.add(id);
    this.#track(
      this.#backend
        .getOrLease(namespace, key, options.leaseMs, 0, false, options.refreshAheadMs)
        .then(async (read) => {
          if (read.leaseToken && read.found) await this.#load(namespace, key, loader, options, read);
          else if (read.leaseToken) await this.#backend.releaseLease(namespace, key, read.leaseToken);
        })
        .catch((err: unknown) => this.#backend.failed("refresh", namespace, key, err))
        .finally(() => this.#refreshing.delete(id)),
    );
  }

  /**
   * Runs the loader (within hardTimeout) with its context, and stores its
   * result in the background: the caller gets the value at once (kept
   * locally by the backend), a failed write is reported and gives the lease
   * back. A failed or skipped run gives the lease back too. With `store`
   * false (the service is unreachable), the value is returned uncached.
   */
  async #load<T>(namespace: string, key: string, loader: Loader<T>, options: ResolvedWrapOptions, { leaseToken, ttlJitterPpm }: LeaseGrant, store = true): Promise<T> {
    const ctx = new LoaderContext();
    let value: T | typeof TIMED_OUT;
    try {
      value = await within(Promise.resolve().then(() => runInContext(ctx, () => loader(ctx))), options.hardTimeout);
      if (value === TIMED_OUT) throw new LoaderTimeoutError(key, options.hardTimeout!);
    } catch (err) {
      ctx.end();
      if (err instanceof RpcError) LOADERS_RPC_ERRORS.add(err);
      if (leaseToken) await this.#backend.releaseLease(namespace, key, leaseToken).catch(() => {});
      throw err;
    }
    ctx.end();
    if (!store || ctx.skipped || (value === undefined && options.negativeTtl === undefined && ctx.ttl === undefined)) {
      if (leaseToken) await this.#backend.releaseLease(namespace, key, leaseToken).catch(() => {});
      return value;
    }
    const ttl = ctx.ttl ?? (value === undefined ? options.negativeTtl! : options.ttl);
    const grace = ctx.grace ?? (value === undefined ? 0 : options.grace);
    let stored: Promise<void>;
    try {
      stored = this.#backend.store(namespace, key, value, { ttl, grace, leaseToken, ttlJitterPpm, tags: ctx.tags ?? options.tags });
    } catch (err) {
      // The value cannot be encoded (UnserializableError): the caller is told, as set and wrapMany tell it.
      if (leaseToken) await this.#backend.releaseLease(namespace, key, leaseToken).catch(() => {});
      throw err;
    }
    this.#track(
      stored.catch(async (err: unknown) => {
        this.#backend.failed("write", namespace, key, err);
        // The value is still the caller's answer; the lease goes back so others need not wait for it.
        if (leaseToken) await this.#backend.releaseLease(namespace, key, leaseToken).catch(() => {});
      }),
    );
    return value;
  }
}

/** RpcErrors that a loader threw (its own, or from its own calls): `wrap` passes them on as they are. */
const LOADERS_RPC_ERRORS = new WeakSet<RpcError>();

/**
 * Awaits `result`; an RpcError of wrap's own calls that it fails with is
 * made again here, after the await, so that its stack names the callers
 * awaiting `wrap` (README.md): the one it got was made where the lease
 * stream's answer was read, and may be shared by every caller of a flight.
 * The loader's errors, RpcErrors included, pass as they are.
 */
async function namingCallers<T>(result: Promise<T>): Promise<T> {
  try {
    return await result;
  } catch (err) {
    throw err instanceof RpcError && !LOADERS_RPC_ERRORS.has(err) ? new RpcError(err.code, err.details, { cause: err.cause, metadata: err.metadata }) : err;
  }
}
