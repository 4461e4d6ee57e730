/** A key's share of a batch load: the batch's promise and the key's place in its result. */
interface BatchSlot<T> {
  batch: Promise<T[]>;
  readonly index: number;
}

/**
 * Runs at most one load per key at a time: callers that ask for a key while
 * its load is in flight share that load's result. A load may cover one key
 * ({@link run}) or many at once ({@link runMany}: one promise for the batch,
 * none per key unless another caller joins).
 *
 * `forget(key)` detaches the in-flight load (after a write to the key), so
 * `isCurrent` tells a finishing load that its result may be stale.
 */
export class SingleFlight<T> {
  readonly #inFlight = new Map<string, Promise<T> | BatchSlot<T>>();

  /** The in-flight load of `key`, or a new one started with `load`. */
  run(key: string, load: (isCurrent: () => boolean) => Promise<T>): Promise<T> {
    const existing = this.#inFlight.get(key);
    if (existing) return existing instanceof Promise ? existing : existing.batch.then((values) => values[existing.index]!);
    const settle = () => {
      if (this.#inFlight.get(key) === promise) this.#inFlight.delete(key);
    };
    const promise: Promise<T> = load(() => this.#inFlight.get(key) === promise).then(
      (value) => (settle(), value),
      (err: unknown) => {
        settle();
        throw err;
      },
    );
    this.#inFlight.set(key, promise);
    return promise;
  }

  /**
   * One load for `keys`, none of which may be in flight (check with {@link has}):
   * `load` resolves to one result per key, in order; `isCurrent(i)` tells it
   * whether `keys[i]` was forgotten meanwhile.
   */
  runMany(keys: readonly string[], load: (isCurrent: (index: number) => boolean) => Promise<T[]>): Promise<T[]> {
    const busy = keys.find((key) => this.#inFlight.has(key));
    if (busy !== undefined) throw new Error(`SingleFlight.runMany: a load of ${JSON.stringify(busy)} is already in flight`);
    const slots: BatchSlot<T>[] = [];
    for (let index = 0; index < keys.length; index++) {
      const key = keys[index]!;
      const slot: BatchSlot<T> = { batch: undefined as unknown as Promise<T[]>, index };
      slots.push(slot);
      this.#inFlight.set(key, slot);
    }
    const batch = load((index) => this.#inFlight.get(keys[index]!) === slots[index]).finally(() => {
      for (let index = 0; index < keys.length; index++) {
        if (this.#inFlight.get(keys[index]!) === slots[index]) this.#inFlight.delete(keys[index]!);
      }
    });
    for (const slot of slots) slot.batch = batch;
    return batch;
  }

  /** True while a load of `key` is in flight. */
  has(key: string): boolean {
    return this.#inFlight.has(key);
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
