import type { CallScope, DurableFootprint, DurableTier, DurableWrite, SharedLeases, TagEpochs } from "../engine/durable-tier.js";

/** The operations of the durable-tier port that go to the store. */
export const DURABLE_OPERATIONS = ["get", "getMany", "set", "setMany", "delete", "deleteMany", "has", "touch", "clear", "tagEpochs", "invalidateTags"] as const;
export type DurableOperation = (typeof DURABLE_OPERATIONS)[number];

/** What an observer learns of one call, before it runs. */
export interface DurableCall {
  readonly operation: DurableOperation;
  readonly namespace: string;
  /** Keys, entries or tags of a batch operation; undefined for one key. */
  readonly batch: number | undefined;
}

/** Runs one durable-tier call, observing it (timing it, tracing it); must return what `run` returns. */
export type DurableCallHook = <T>(call: DurableCall, run: () => Promise<T>) => Promise<T>;

/**
 * A durable tier that passes every call of the one it wraps through hooks
 * (metrics, tracing), the first hook outermost, and changes nothing else.
 */
export class ObservedDurableTier implements DurableTier {
  readonly #tier: DurableTier;
  readonly #hooks: readonly DurableCallHook[];
  /** The wrapped tier's shared leases, passed through unobserved, except the read of {@link SharedLeases.readAndAcquire}, observed as a get. */
  readonly leases?: SharedLeases;

  constructor(tier: DurableTier, hooks: readonly DurableCallHook[]) {
    this.#tier = tier;
    this.#hooks = hooks;
    const leases = tier.leases;
    if (leases?.readAndAcquire) {
      const readAndAcquire = leases.readAndAcquire.bind(leases);
      this.leases = {
        acquire: leases.acquire.bind(leases),
        release: leases.release.bind(leases),
        setFenced: leases.setFenced.bind(leases),
        readAndAcquire: (namespace, key, token, durationMs, scope) =>
          this.#call("get", namespace, undefined, () => readAndAcquire(namespace, key, token, durationMs, scope)),
      };
    } else if (leases) this.leases = leases;
  }

  get name(): DurableTier["name"] {
    return this.#tier.name;
  }

  #call<T>(operation: DurableOperation, namespace: string, batch: number | undefined, run: () => Promise<T>): Promise<T> {
    const call: DurableCall = { operation, namespace, batch };
    let next = run;
    for (let i = this.#hooks.length - 1; i >= 0; i--) {
      const hook = this.#hooks[i]!;
      const inner = next;
      next = () => hook(call, inner);
    }
    return next();
  }

  get(namespace: string, key: string, scope?: CallScope): Promise<Uint8Array | undefined> {
    return this.#call("get", namespace, undefined, () => this.#tier.get(namespace, key, scope));
  }

  getMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<(Uint8Array | undefined)[]> {
    return this.#call("getMany", namespace, keys.length, () => this.#tier.getMany(namespace, keys, scope));
  }

  set(namespace: string, write: DurableWrite, scope?: CallScope): Promise<void> {
    return this.#call("set", namespace, undefined, () => this.#tier.set(namespace, write, scope));
  }

  setMany(namespace: string, writes: readonly DurableWrite[], scope?: CallScope): Promise<void> {
    return this.#call("setMany", namespace, writes.length, () => this.#tier.setMany(namespace, writes, scope));
  }

  delete(namespace: string, key: string, scope?: CallScope): Promise<boolean> {
    return this.#call("delete", namespace, undefined, () => this.#tier.delete(namespace, key, scope));
  }

  deleteMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<number> {
    return this.#call("deleteMany", namespace, keys.length, () => this.#tier.deleteMany(namespace, keys, scope));
  }

  has(namespace: string, key: string, scope?: CallScope): Promise<boolean> {
    return this.#call("has", namespace, undefined, () => this.#tier.has(namespace, key, scope));
  }

  touch(namespace: string, key: string, expiresAt: number, scope?: CallScope): Promise<boolean> {
    return this.#call("touch", namespace, undefined, () => this.#tier.touch(namespace, key, expiresAt, scope));
  }

  clear(namespace: string, scope?: CallScope): Promise<void> {
    return this.#call("clear", namespace, undefined, () => this.#tier.clear(namespace, scope));
  }

  tagEpochs(namespace: string, tags: readonly string[], scope?: CallScope): Promise<TagEpochs> {
    return this.#call("tagEpochs", namespace, tags.length, () => this.#tier.tagEpochs(namespace, tags, scope));
  }

  invalidateTags(namespace: string, tags: readonly string[], scope?: CallScope): Promise<number> {
    return this.#call("invalidateTags", namespace, tags.length, () => this.#tier.invalidateTags(namespace, tags, scope));
  }

  /** Not observed: it reads the tier's own bookkeeping. */
  footprint(): DurableFootprint | undefined {
    return this.#tier.footprint?.();
  }

  close(): Promise<void> {
    return this.#tier.close();
  }
}
