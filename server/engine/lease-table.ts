import type { Clock } from "../../core/clock.js";
import { randomToken } from "./random-token.js";

interface Lease {
  token: string;
  expiresAt: number;
  waiters: Set<(how: WaitEnd) => void>;
}

/**
 * Who may compute a missing value: at most one lease per (namespace, key)
 * at a time, lapsing after its duration. Waiters are woken when the lease
 * is fulfilled (the value was written), released, or lapses.
 */
export class LeaseTable {
  readonly #leases = new Map<string, Lease>();
  /** Callers waiting for a lease held elsewhere (another instance, through shared leases), by key. */
  readonly #remoteWaiters = new Map<string, Set<(how: WaitEnd) => void>>();
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
      this.#end(id, lease, "retry");
      return undefined;
    }
    return lease;
  }

  #end(id: string, lease: Lease, how: WaitEnd, wakeRemote = true): void {
    if (this.#leases.get(id) === lease) this.#leases.delete(id);
    for (const wake of lease.waiters) wake(how);
    lease.waiters.clear();
    if (wakeRemote) this.#wakeRemote(id, how);
  }

  #wakeRemote(id: string, how: WaitEnd): void {
    const waiters = this.#remoteWaiters.get(id);
    if (!waiters) return;
    this.#remoteWaiters.delete(id);
    for (const wake of waiters) wake(how);
  }

  /** A new token when nobody holds the lease; undefined when someone does. */
  tryAcquire(namespace: string, key: string, durationMs: number): string | undefined {
    if (++this.#acquisitions % 1024 === 0) this.#prune();
    const id = this.#id(namespace, key);
    if (this.#current(id)) return undefined;
    const token = randomToken();
    this.#leases.set(id, { token, expiresAt: this.#clock() + durationMs, waiters: new Set() });
    return token;
  }

  /** True when someone holds the key's lease here now. */
  isHeld(namespace: string, key: string): boolean {
    return this.#current(this.#id(namespace, key)) !== undefined;
  }

  /**
   * Ends the lease if `token` holds it; true when it did. Its waiters learn
   * "changed" (the holder is done: it wrote or gave the lease back), or with
   * `withdrawn` "retry" (a lease taken here that the shared leases refused;
   * callers waiting for the holder elsewhere are left waiting: nothing
   * changed there, and waking them made them spin through Redis).
   */
  release(namespace: string, key: string, token: string, withdrawn = false): boolean {
    const id = this.#id(namespace, key);
    const lease = this.#current(id);
    if (!lease || lease.token !== token) return false;
    this.#end(id, lease, withdrawn ? "retry" : "changed", !withdrawn);
    return true;
  }

  /** Wakes the waiters of a key whose value was just written (the lease, if any, stays until released). */
  notifyWritten(namespace: string, key: string): void {
    const id = this.#id(namespace, key);
    this.#wakeRemote(id, "changed");
    const lease = this.#leases.get(id);
    if (!lease) return;
    for (const wake of lease.waiters) wake("changed");
    lease.waiters.clear();
  }

  /** Wakes every waiter of the namespace (it was cleared, or changes to it may have been missed). */
  notifyNamespace(namespace: string): void {
    const prefix = `${namespace}\u0000`;
    for (const id of [...this.#remoteWaiters.keys()]) if (id.startsWith(prefix)) this.#wakeRemote(id, "retry");
    for (const [id, lease] of this.#leases) {
      if (!id.startsWith(prefix)) continue;
      for (const wake of lease.waiters) wake("retry");
      lease.waiters.clear();
    }
  }

  /**
   * Resolves when the key's lease ends or its value is written, or after
   * `waitMs` (or when the lease would lapse, whichever is first), or on abort.
   * With no lease here but `heldElsewhereMs` (the ms another instance's
   * holder has left): when the key is written or released through this
   * instance or reported changed by another, or after min(waitMs, heldElsewhereMs).
   * "changed" when the holder finished (wrote or gave the lease back) or the
   * key changed; "retry" when time ran out, the lease lapsed or was
   * withdrawn, or the signal aborted.
   */
  waitFor(namespace: string, key: string, waitMs: number, signal?: AbortSignal, heldElsewhereMs?: number): Promise<WaitEnd> {
    const id = this.#id(namespace, key);
    const lease = this.#current(id);
    if (!lease && heldElsewhereMs !== undefined) return this.#waitElsewhere(id, Math.min(waitMs, heldElsewhereMs), signal);
    if (!lease || waitMs <= 0 || signal?.aborted) return Promise.resolve("retry");
    const limit = Math.min(waitMs, Math.max(0, lease.expiresAt - this.#clock()));
    return new Promise<WaitEnd>((resolve) => {
      const end = (how: WaitEnd) => {
        clearTimeout(timer);
        lease.waiters.delete(woken);
        signal?.removeEventListener("abort", timedOut);
        resolve(how);
      };
      const woken = (how: WaitEnd) => end(how);
      const timedOut = () => end("retry");
      const timer = setTimeout(timedOut, limit);
      lease.waiters.add(woken);
      signal?.addEventListener("abort", timedOut, { once: true });
    });
  }

  #waitElsewhere(id: string, limit: number, signal: AbortSignal | undefined): Promise<WaitEnd> {
    if (limit <= 0 || signal?.aborted) return Promise.resolve("retry");
    let waiters = this.#remoteWaiters.get(id);
    if (!waiters) this.#remoteWaiters.set(id, (waiters = new Set()));
    const set = waiters;
    return new Promise<WaitEnd>((resolve) => {
      const end = (how: WaitEnd) => {
        clearTimeout(timer);
        set.delete(woken);
        if (set.size === 0 && this.#remoteWaiters.get(id) === set) this.#remoteWaiters.delete(id);
        signal?.removeEventListener("abort", timedOut);
        resolve(how);
      };
      const woken = (how: WaitEnd) => end(how);
      const timedOut = () => end("retry");
      const timer = setTimeout(timedOut, limit);
      set.add(woken);
      signal?.addEventListener("abort", timedOut, { once: true });
    });
  }

  /** Ends lapsed leases (those abandoned by callers that never came back). */
  #prune(): void {
    const now = this.#clock();
    for (const [id, lease] of this.#leases) if (lease.expiresAt <= now) this.#end(id, lease, "retry");
  }

  /** Leases held now (expired ones may still count until touched). */
  get size(): number {
    return this.#leases.size;
  }
}

/** How a wait for a lease ended: the holder finished or the key changed ("changed"), or anything else ("retry"). */
export type WaitEnd = "changed" | "retry";
