/**
 * A bound on calls running at once across every stream that shares it (the
 * calls LeaseSession streams carry): a stream takes a slot before it reads a
 * call and gives it back when the call is answered, so many streams together
 * cannot hold more than `max` calls.
 */
export class CallSlots {
  readonly max: number;
  #used = 0;
  readonly #waiters: (() => void)[] = [];

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`CallSlots needs a positive integer, got ${max}`);
    this.max = max;
  }

  /** Slots held now. */
  get used(): number {
    return this.#used;
  }

  /** Takes a slot now if one is free. */
  tryTake(): boolean {
    if (this.#used >= this.max) return false;
    this.#used++;
    return true;
  }

  /** Resolves once a slot is taken (first come, first served); `signal` gives up waiting (resolving false). */
  take(signal?: AbortSignal): Promise<boolean> {
    if (this.#waiters.length === 0 && this.tryTake()) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const onAbort = () => {
        const at = this.#waiters.indexOf(grant);
        if (at >= 0) this.#waiters.splice(at, 1);
        resolve(false);
      };
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve(true);
      };
      this.#waiters.push(grant);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Gives a slot back, to the longest waiter if there is one. */
  give(): void {
    const next = this.#waiters.shift();
    if (next !== undefined) next();
    else this.#used--;
  }
}
