import type { CallScope } from "./durable-tier.js";
import { cancelReasonOf } from "./scope-cancel.js";
import { SharedLoadScope } from "./shared-load-scope.js";

/** A load of one key in flight. */
interface KeyLoad<T> {
  promise: Promise<T>;
  readonly scope: SharedLoadScope;
}

/** A key's share of a batch load: the batch's promise and the key's place in its result. */
interface BatchSlot<T> {
  batch: Promise<T[]>;
  readonly index: number;
  readonly scope: SharedLoadScope;
}

/**
 * Runs at most one load per key at a time: callers that ask for a key while
 * its load is in flight share that load's result. A load may cover one key
 * ({@link run}) or many at once ({@link runMany}: one promise for the batch,
 * none per key unless another caller joins).
 *
 * A load runs under its own {@link SharedLoadScope}, never a caller's: each
 * caller (`waiter`) stops waiting when its own call ends early, and the load
 * is cancelled only when all of its callers have. A cancelled load is not
 * joined: the next caller starts a new one.
 *
 * `forget(key)` detaches the in-flight load (after a write to the key), so
 * `isCurrent` tells a finishing load that its result may be stale.
 */
export class SingleFlight<T> {
  readonly #inFlight = new Map<string, KeyLoad<T> | BatchSlot<T>>();

  /** `waiter`'s share of the in-flight load of `key`, or of a new one started with `load`. */
  run(key: string, waiter: CallScope | undefined, load: (isCurrent: () => boolean, scope: CallScope) => Promise<T>): Promise<T> {
    const existing = this.#joinable(key);
    if (existing) return shareOf(existing, waiter);
    const early = cancelReasonOf(waiter);
    if (early !== undefined) return Promise.reject(early);
    const scope = new SharedLoadScope();
    const entry: KeyLoad<T> = { promise: undefined as unknown as Promise<T>, scope };
    const settle = () => {
      if (this.#inFlight.get(key) === entry) this.#inFlight.delete(key);
    };
    entry.promise = load(() => this.#inFlight.get(key) === entry, scope).then(
      (value) => (settle(), value),
      (err: unknown) => {
        settle();
        throw err;
      },
    );
    this.#inFlight.set(key, entry);
    return scope.wait(entry.promise, waiter);
  }

  /** `waiter`'s share of the in-flight load of `key`, or undefined when none is in flight. */
  join(key: string, waiter: CallScope | undefined): Promise<T> | undefined {
    const existing = this.#joinable(key);
    return existing && shareOf(existing, waiter);
  }

  /** The in-flight load of `key`, unless every caller left it: it is ending, and a new caller starts a new one. */
  #joinable(key: string): KeyLoad<T> | BatchSlot<T> | undefined {
    const existing = this.#inFlight.get(key);
    return existing && existing.scope.cancelReason === undefined ? existing : undefined;
  }

  /**
   * `waiter`'s share of one load for `keys`, none of which may be in flight
   * (check with {@link has}): `load` resolves to one result per key, in
   * order; `isCurrent(i)` tells it whether `keys[i]` was forgotten meanwhile.
   */
  runMany(keys: readonly string[], waiter: CallScope | undefined, load: (isCurrent: (index: number) => boolean, scope: CallScope) => Promise<T[]>): Promise<T[]> {
    const busy = keys.find((key) => this.has(key));
    if (busy !== undefined) throw new Error(`SingleFlight.runMany: a load of ${JSON.stringify(busy)} is already in flight`);
    const early = cancelReasonOf(waiter);
    if (early !== undefined) return Promise.reject(early);
    const scope = new SharedLoadScope();
    const slots: BatchSlot<T>[] = [];
    for (let index = 0; index < keys.length; index++) {
      const key = keys[index]!;
      const slot: BatchSlot<T> = { batch: undefined as unknown as Promise<T[]>, index, scope };
      slots.push(slot);
      this.#inFlight.set(key, slot);
    }
    const batch = load((index) => this.#inFlight.get(keys[index]!) === slots[index], scope).finally(() => {
      for (let index = 0; index < keys.length; index++) {
        if (this.#inFlight.get(keys[index]!) === slots[index]) this.#inFlight.delete(keys[index]!);
      }
    });
    for (const slot of slots) slot.batch = batch;
    return scope.wait(batch, waiter);
  }

  /** True while a load of `key` that callers can join is in flight. */
  has(key: string): boolean {
    return this.#joinable(key) !== undefined;
  }

  /** Detaches any in-flight load of `key`: later callers start a new one. */
  forget(key: string): void {
    this.#inFlight.delete(key);
  }

  /** Detaches every in-flight load (after a clear). */
  forgetAll(): void {
    this.#inFlight.clear();
  }

  /** Number of keys whose load is in flight. */
  get size(): number {
    return this.#inFlight.size;
  }
}

function shareOf<T>(entry: KeyLoad<T> | BatchSlot<T>, waiter: CallScope | undefined): Promise<T> {
  if ("promise" in entry) return entry.scope.wait(entry.promise, waiter);
  const index = entry.index;
  return entry.scope.wait(entry.batch, waiter).then((values) => values[index]!);
}
