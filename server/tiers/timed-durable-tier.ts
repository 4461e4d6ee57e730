import type { CallScope, DurableFootprint, DurableTier, DurableWrite } from "../engine/durable-tier.js";

/** Records how long one durable-tier call took, in seconds, and whether it failed. */
export type DurableCallObserver = (operation: DurableOperation, seconds: number, failed: boolean) => void;

/** The operations of the durable-tier port that go to the store. */
export const DURABLE_OPERATIONS = ["get", "getMany", "set", "setMany", "delete", "deleteMany", "has", "touch", "clear"] as const;
export type DurableOperation = (typeof DURABLE_OPERATIONS)[number];

/**
 * A durable tier that times every call of the one it wraps (for
 * `tiercache_durable_call_duration_seconds`) and changes nothing else.
 */
export class TimedDurableTier implements DurableTier {
  readonly #tier: DurableTier;
  readonly #observe: DurableCallObserver;

  constructor(tier: DurableTier, observe: DurableCallObserver) {
    this.#tier = tier;
    this.#observe = observe;
  }

  get name(): DurableTier["name"] {
    return this.#tier.name;
  }

  #timed<T>(operation: DurableOperation, call: Promise<T>): Promise<T> {
    const start = performance.now();
    return call.then(
      (result) => {
        this.#observe(operation, (performance.now() - start) / 1000, false);
        return result;
      },
      (err: unknown) => {
        this.#observe(operation, (performance.now() - start) / 1000, true);
        throw err;
      },
    );
  }

  get(namespace: string, key: string, scope?: CallScope): Promise<Uint8Array | undefined> {
    return this.#timed("get", this.#tier.get(namespace, key, scope));
  }

  getMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<(Uint8Array | undefined)[]> {
    return this.#timed("getMany", this.#tier.getMany(namespace, keys, scope));
  }

  set(namespace: string, write: DurableWrite, scope?: CallScope): Promise<void> {
    return this.#timed("set", this.#tier.set(namespace, write, scope));
  }

  setMany(namespace: string, writes: readonly DurableWrite[], scope?: CallScope): Promise<void> {
    return this.#timed("setMany", this.#tier.setMany(namespace, writes, scope));
  }

  delete(namespace: string, key: string, scope?: CallScope): Promise<boolean> {
    return this.#timed("delete", this.#tier.delete(namespace, key, scope));
  }

  deleteMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<number> {
    return this.#timed("deleteMany", this.#tier.deleteMany(namespace, keys, scope));
  }

  has(namespace: string, key: string, scope?: CallScope): Promise<boolean> {
    return this.#timed("has", this.#tier.has(namespace, key, scope));
  }

  touch(namespace: string, key: string, expiresAt: number, scope?: CallScope): Promise<boolean> {
    return this.#timed("touch", this.#tier.touch(namespace, key, expiresAt, scope));
  }

  clear(namespace: string, scope?: CallScope): Promise<void> {
    return this.#timed("clear", this.#tier.clear(namespace, scope));
  }

  /** Not timed: it reads the tier's own bookkeeping. */
  footprint(): DurableFootprint | undefined {
    return this.#tier.footprint?.();
  }

  close(): Promise<void> {
    return this.#tier.close();
  }
}
