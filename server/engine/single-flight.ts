/**
 * Runs at most one load per key at a time: callers that ask for a key while
 * its load is in flight share that load's promise.
 *
 * `forget(key)` detaches the in-flight load (after a write to the key), so
 * `isCurrent` tells a finishing load that its result may be stale.
 */
export class SingleFlight<T> {
  readonly #inFlight = new Map<string, Promise<T>>();

  /** The in-flight load of `key`, or a new one started with `load`. */
  run(key: string, load: (isCurrent: () => boolean) => Promise<T>): Promise<T> {
    const existing = this.#inFlight.get(key);
    if (existing) return existing;
    const promise: Promise<T> = load(() => this.#inFlight.get(key) === promise).finally(() => {
      if (this.#inFlight.get(key) === promise) this.#inFlight.delete(key);
    });
    this.#inFlight.set(key, promise);
    return promise;
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

  /** Number of loads in flight. */
  get size(): number {
    return this.#inFlight.size;
  }
}
