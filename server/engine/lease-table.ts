import { randomBytes } from "node:crypto";
import type { Clock } from "../../core/clock.js";

interface Lease {
  token: string;
  expiresAt: number;
  waiters: Set<() => void>;
}

/**
 * Who may compute a missing value: at most one lease per (namespace, key)
 * at a time, lapsing after its duration. Waiters are woken when the lease
 * is fulfilled (the value was written), released, or lapses.
 */
export class LeaseTable {
  readonly #leases = new Map<string, Lease>();
  /** Callers waiting for a lease held elsewhere (another instance, through shared leases), by key. */
  readonly #remoteWaiters = new Map<string, Set<() => void>>();
  readonly #clock: Clock;
  #acquisitions = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  #id(namespace: string, key: string): string {
    return `${namespace}\u0000${key}`;
  }

  #current(id: string): Lease | undefined {
    const lease = this.#leases.get(id);
    if (lease && lease.expiresAt <= this.#clock()) {
      this.#end(id, lease);
      return undefined;
    }
    return lease;
  }

  #end(id: string, lease: Lease): void {
    if (this.#leases.get(id) === lease) this.#leases.delete(id);
    for (const wake of lease.waiters) wake();
    lease.waiters.clear();
    this.#wakeRemote(id);
  }

  #wakeRemote(id: string): void {
    const waiters = this.#remoteWaiters.get(id);
    if (!waiters) return;
    this.#remoteWaiters.delete(id);
    for (const wake of waiters) wake();
  }

  /** A new token when nobody holds the lease; undefined when someone does. */
  tryAcquire(namespace: string, key: string, durationMs: number): string | undefined {
    if (++this.#acquisitions % 1024 === 0) this.#prune();
    const id = this.#id(namespace, key);
    if (this.#current(id)) return undefined;
    const token = randomBytes(12).toString("base64url");
    this.#leases.set(id, { token, expiresAt: this.#clock() + durationMs, waiters: new Set() });
    return token;
  }

  /** True when someone holds the key's lease here now. */
  isHeld(namespace: string, key: string): boolean {
    return this.#current(this.#id(namespace, key)) !== undefined;
  }

  /** Ends the lease if `token` holds it; true when it did. */
  release(namespace: string, key: string, token: string): boolean {
    const id = this.#id(namespace, key);
    const lease = this.#current(id);
    if (!lease || lease.token !== token) return false;
    this.#end(id, lease);
    return true;
  }

  /** Wakes the waiters of a key whose value was just written (the lease, if any, stays until released). */
  notifyWritten(namespace: string, key: string): void {
    const id = this.#id(namespace, key);
    this.#wakeRemote(id);
    const lease = this.#leases.get(id);
    if (!lease) return;
    for (const wake of lease.waiters) wake();
    lease.waiters.clear();
  }

  /** Wakes every waiter of the namespace (it was cleared, or changes to it may have been missed). */
  notifyNamespace(namespace: string): void {
    const prefix = `${namespace}\u0000`;
    for (const id of [...this.#remoteWaiters.keys()]) if (id.startsWith(prefix)) this.#wakeRemote(id);
    for (const [id, lease] of this.#leases) {
      if (!id.startsWith(prefix)) continue;
      for (const wake of lease.waiters) wake();
      lease.waiters.clear();
    }
  }

  /**
   * Resolves when the key's lease ends or its value is written, or after
   * `waitMs` (or when the lease would lapse, whichever is first), or on abort.
   * With no lease here but `heldElsewhereMs` (the ms another instance's
   * holder has left): when the key is written or released through this
   * instance or reported changed by another, or after min(waitMs, heldElsewhereMs).
   */
  waitFor(namespace: string, key: string, waitMs: number, signal?: AbortSignal, heldElsewhereMs?: number): Promise<void> {
    const id = this.#id(namespace, key);
    const lease = this.#current(id);
    if (!lease && heldElsewhereMs !== undefined) return this.#waitElsewhere(id, Math.min(waitMs, heldElsewhereMs), signal);
    if (!lease || waitMs <= 0 || signal?.aborted) return Promise.resolve();
    const limit = Math.min(waitMs, Math.max(0, lease.expiresAt - this.#clock()));
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        lease.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, limit);
      lease.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  #waitElsewhere(id: string, limit: number, signal: AbortSignal | undefined): Promise<void> {
    if (limit <= 0 || signal?.aborted) return Promise.resolve();
    let waiters = this.#remoteWaiters.get(id);
    if (!waiters) this.#remoteWaiters.set(id, (waiters = new Set()));
    const set = waiters;
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#remoteWaiters.get(id) === set) this.#remoteWaiters.delete(id);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, limit);
      set.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** Ends lapsed leases (those abandoned by callers that never came back). */
  #prune(): void {
    const now = this.#clock();
    for (const [id, lease] of this.#leases) if (lease.expiresAt <= now) this.#end(id, lease);
  }

  /** Leases held now (expired ones may still count until touched). */
  get size(): number {
    return this.#leases.size;
  }
}
