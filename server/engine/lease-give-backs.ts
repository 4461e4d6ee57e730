/** Options of {@link LeaseGiveBacks}. */
export interface LeaseGiveBacksOptions {
  /** Pause before the first retry, in ms; doubles up to `maxPauseMs`. @default 50 */
  readonly firstPauseMs?: number;
  /** @default 1000 */
  readonly maxPauseMs?: number;
  /** Most give-backs waiting for a retry at once; past it a failed one is left to lapse. @default 10000 */
  readonly maxWaiting?: number;
}

/**
 * Gives back, in the background, shared leases that no caller will use,
 * trying again (backing off) while the shared leases cannot be reached, until
 * the lease would have lapsed by itself. A give-back that fails may still be
 * needed: the lease request it undoes may be stalled in Redis and take the
 * lease once Redis runs it, after the call that sent it has failed.
 */
export class LeaseGiveBacks {
  readonly #release: (namespace: string, key: string, token: string) => Promise<boolean>;
  readonly #released: (namespace: string, key: string) => void;
  readonly #firstPauseMs: number;
  readonly #maxPauseMs: number;
  readonly #maxWaiting: number;
  #waiting = 0;
  #closed = false;

  /**
   * `release` ends the lease if `token` holds it (true when it did) and
   * rejects when it cannot tell; `released` learns of each lease it ended.
   */
  constructor(
    release: (namespace: string, key: string, token: string) => Promise<boolean>,
    released: (namespace: string, key: string) => void,
    options: LeaseGiveBacksOptions = {},
  ) {
    this.#release = release;
    this.#released = released;
    this.#firstPauseMs = options.firstPauseMs ?? 50;
    this.#maxPauseMs = options.maxPauseMs ?? 1000;
    this.#maxWaiting = options.maxWaiting ?? 10_000;
  }

  /** Give-backs waiting for a retry now. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Gives the lease `token` may hold back, retrying failures for up to `lapsesInMs` (when it would lapse by itself). */
  giveBack(namespace: string, key: string, token: string, lapsesInMs: number): void {
    const until = performance.now() + lapsesInMs;
    let pause = this.#firstPauseMs;
    const attempt = (): void => {
      this.#release(namespace, key, token).then(
        (ended) => {
          if (ended) this.#released(namespace, key);
        },
        () => {
          if (this.#closed || performance.now() + pause >= until || this.#waiting >= this.#maxWaiting) return;
          this.#waiting++;
          setTimeout(() => {
            this.#waiting--;
            attempt();
          }, pause).unref();
          pause = Math.min(pause * 2, this.#maxPauseMs);
        },
      );
    };
    attempt();
  }

  /** Stops retrying (the tier is closing). */
  close(): void {
    this.#closed = true;
  }
}
