import { TierUnavailableError } from "../../core/errors.js";
import type { CallScope, DurableTier, DurableWrite, SharedLeases, TagEpochs } from "../engine/durable-tier.js";

/**
 * A durable tier that refuses changes (set, delete, touch, clear, invalidateTags) while
 * `canAnnounce()` is false, i.e. while this instance's invalidation messages
 * are not getting through to Redis: another instance could not hear of such
 * a change, and once it has flushed for this instance's silence it would
 * keep a copy the change made stale. Reads pass through.
 *
 * The refusal is a {@link TierUnavailableError} (UNAVAILABLE at the edge; a
 * degraded write with `--degraded-writes`), raised before anything is sent.
 */
export class WriteFence implements DurableTier {
  readonly #tier: DurableTier;
  readonly #canAnnounce: () => boolean;

  /** The tier's shared leases; their fenced write is refused like any other change. */
  readonly leases?: SharedLeases;

  constructor(tier: DurableTier, canAnnounce: () => boolean) {
    this.#tier = tier;
    this.#canAnnounce = canAnnounce;
    const leases = tier.leases;
    if (leases) {
      this.leases = {
        acquire: (namespace, key, token, durationMs, unlessFresh, scope, seenExpiresAt) =>
          leases.acquire(namespace, key, token, durationMs, unlessFresh, scope, seenExpiresAt),
        ...(leases.readAndAcquire && { readAndAcquire: leases.readAndAcquire.bind(leases) }),
        release: (namespace, key, token) => leases.release(namespace, key, token),
        setFenced: async (namespace, write, token, scope, change) => {
          this.#check("set");
          return leases.setFenced(namespace, write, token, scope, change);
        },
      };
    }
  }

  get name(): DurableTier["name"] {
    return this.#tier.name;
  }

  #check(op: string): void {
    if (!this.#canAnnounce()) {
      throw new TierUnavailableError(`${this.#tier.name} ${op} refused: the other server instances cannot be told of changes right now`);
    }
  }

  get(namespace: string, key: string, scope?: CallScope): Promise<Uint8Array | undefined> {
    return this.#tier.get(namespace, key, scope);
  }

  getMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<(Uint8Array | undefined)[]> {
    return this.#tier.getMany(namespace, keys, scope);
  }

  has(namespace: string, key: string, scope?: CallScope): Promise<boolean> {
    return this.#tier.has(namespace, key, scope);
  }

  async set(namespace: string, write: DurableWrite, scope?: CallScope): Promise<void> {
    this.#check("set");
    return this.#tier.set(namespace, write, scope);
  }

  async setMany(namespace: string, writes: readonly DurableWrite[], scope?: CallScope): Promise<void> {
    this.#check("setMany");
    return this.#tier.setMany(namespace, writes, scope);
  }

  async delete(namespace: string, key: string, scope?: CallScope): Promise<boolean> {
    this.#check("delete");
    return this.#tier.delete(namespace, key, scope);
  }

  async deleteMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<number> {
    this.#check("deleteMany");
    return this.#tier.deleteMany(namespace, keys, scope);
  }

  async touch(namespace: string, key: string, expiresAt: number, scope?: CallScope): Promise<boolean> {
    this.#check("touch");
    return this.#tier.touch(namespace, key, expiresAt, scope);
  }

  async clear(namespace: string, scope?: CallScope): Promise<void> {
    this.#check("clear");
    return this.#tier.clear(namespace, scope);
  }

  tagEpochs(namespace: string, tags: readonly string[], scope?: CallScope): Promise<TagEpochs> {
    return this.#tier.tagEpochs(namespace, tags, scope);
  }

  async invalidateTags(namespace: string, tags: readonly string[], scope?: CallScope): Promise<number> {
    this.#check("invalidateTags");
    return this.#tier.invalidateTags(namespace, tags, scope);
  }

  close(): Promise<void> {
    return this.#tier.close();
  }
}
