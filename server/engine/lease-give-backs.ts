/** Options of {@link LeaseGiveBacks}. */
export interface LeaseGiveBacksOptions {
  /** Pause before the first retry, in ms; doubles up to `maxPauseMs` while retries fail. @default 50 */
  readonly firstPauseMs?: number;
  /** @default 1000 */
  readonly maxPauseMs?: number;
  /** Most give-backs waiting at once; past it a failed one is left to lapse. @default 10000 */
  readonly maxWaiting?: number;
}

interface GiveBack {
  readonly namespace: string;
  readonly key: string;
  readonly token: string;
}

/**
 * Gives back, in the background, shared leases that no caller will use.
 *
 * A give-back that fails is kept until one gets an answer: the lease request
 * it undoes may be stalled in Redis and take the lease whenever Redis runs
 * it, after the call that sent it has failed; a release sent after it on the
 * same connection and answered (ended or not held) comes after it. While
 * give-backs wait, one of them is tried at a time, backing off, so a Redis
 * that is down costs one failing call per pause, however many wait; once it
 * is answered the others go at once. At most `maxWaiting` wait.
 */
export class LeaseGiveBacks {
  readonly #release: (namespace: string, key: string, token: string) => Promise<boolean>;
  readonly #released: (namespace: string, key: string) => void;
  readonly #firstPauseMs: number;
  readonly #maxPauseMs: number;
  readonly #maxWaiting: number;
  readonly #waiting = new Set<GiveBack>();
  #pause: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #draining = false;
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
    this.#pause = this.#firstPauseMs;
  }

  /** Give-backs waiting for a retry now. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** Gives back the lease `token` may hold: at once, unless others wait (the shared leases are not answering): then in turn. */
  giveBack(namespace: string, key: string, token: string): void {
    if (this.#closed) return;
    const item = { namespace, key, token };
    if (this.#waiting.size > 0) return this.#wait(item);
    this.#try(item).catch(() => this.#wait(item));
  }

  /** Stops giving back (the tier is closing). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#waiting.clear();
  }

  /** One release; resolves once answered (announcing a lease it ended), rejects when it was not. */
  async #try(item: GiveBack): Promise<void> {
    if (await this.#release(item.namespace, item.key, item.token)) this.#released(item.namespace, item.key);
  }

  #wait(item: GiveBack): void {
    if (this.#closed || this.#waiting.size >= this.#maxWaiting) return;
    this.#waiting.add(item);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#draining || this.#closed || this.#waiting.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#drain();
    }, this.#pause);
    this.#timer.unref?.();
  }

  /** Tries the oldest waiting give-back; once it is answered, all the others at once. */
  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      const [probe] = this.#waiting;
      if (probe === undefined) return;
      try {
        await this.#try(probe);
      } catch {
        this.#pause = Math.min(this.#pause * 2, this.#maxPauseMs);
        return;
      }
      this.#waiting.delete(probe);
      this.#pause = this.#firstPauseMs;
      const rest = [...this.#waiting];
      await Promise.all(rest.map((item) => this.#try(item).then(() => this.#waiting.delete(item), () => {})));
    } finally {
      this.#draining = false;
      this.#schedule();
    }
  }
}
