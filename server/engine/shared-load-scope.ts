import { Cancellation } from "../../core/cancellation.js";
import type { CallScope } from "./durable-tier.js";
import { raceCancel } from "./scope-cancel.js";

/**
 * The scope a load shared by several calls runs under (a durable-tier read
 * that later callers of the same key join). It is none of theirs: it ends
 * early only once every call waiting for the load has ended early, so one
 * caller's cancel or short deadline never fails the others, and a load that
 * nobody waits for any more stops (its Redis attempt ends) instead of
 * running on. It has no deadline of its own: each waiter stops waiting at its
 * own, through its cancellation (the server's call contexts cancel at their
 * deadline), and the durable tier bounds each attempt by its command timeout.
 */
export class SharedLoadScope extends Cancellation implements CallScope {
  #waiters = 0;

  /**
   * `load` as `waiter` sees it: it rejects with the waiter's reason as soon as
   * the waiter's call ends early (at once if it has), and that waiter leaves.
   * A waiter that cannot end early (no scope) keeps the load going.
   */
  wait<T>(load: Promise<T>, waiter: CallScope | undefined): Promise<T> {
    this.#waiters++;
    return raceCancel(load, waiter, (reason) => (this.#leave(reason), reason));
  }

  #leave(reason: unknown): void {
    if (--this.#waiters === 0) this.cancel(reason);
  }
}
