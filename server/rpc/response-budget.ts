interface Waiter {
  readonly bytes: number;
  readonly grant: () => void;
}

/**
 * One bound on the response bytes all calls decode at once (GetMany,
 * StreamGet): a call takes its share before decoding and gives it back once
 * the message is handed on. Calls beyond the bound wait in order (their
 * deadline or cancellation still ends them), so that many concurrent heavy
 * reads cannot together hold more than this in decoded values.
 */
export class ResponseBudget {
  readonly maxBytes: number;
  #available: number;
  readonly #waiters: Waiter[] = [];

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
    this.#available = maxBytes;
  }

  /** Bytes not taken now. */
  get available(): number {
    return this.#available;
  }

  /**
   * Takes `bytes` (at most the whole budget) once they are free; resolves with
   * the function that gives them back (calling it again does nothing).
   * Rejects with the signal's reason when `signal` aborts first (the call
   * has ended: its status is already decided).
   */
  acquire(bytes: number, signal?: AbortSignal): Promise<() => void> {
    const want = Math.min(Math.max(0, bytes), this.maxBytes);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#available += want;
      this.#wake();
    };
    if (this.#waiters.length === 0 && want <= this.#available) {
      this.#available -= want;
      return Promise.resolve(release);
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        bytes: want,
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve(release);
        },
      };
      const onAbort = () => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        this.#wake();
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Grants waiters in order while the first one fits. */
  #wake(): void {
    while (this.#waiters.length > 0 && this.#waiters[0]!.bytes <= this.#available) {
      const waiter = this.#waiters.shift()!;
      this.#available -= waiter.bytes;
      waiter.grant();
    }
  }
}
