/**
 * The early end of a call, told once: `cancelReason` is why, and it reaches a
 * signal (made only when asked for) and every listener still listening. The
 * base of scopes that can end early (see CallScope).
 */
export class Cancellation {
  #reason: unknown;
  #listeners: ((reason: unknown) => void)[] | undefined;
  #controller: AbortController | undefined;

  /** Why the call ended early, or undefined while it runs. */
  get cancelReason(): unknown {
    return this.#reason;
  }

  /** Aborts with the reason when the call ends early. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#reason !== undefined) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** Calls `listener` once when the call ends early (at once if it has); returns a function that stops listening. */
  onCancel(listener: (reason: unknown) => void): () => void {
    if (this.#reason !== undefined) {
      listener(this.#reason);
      return noop;
    }
    (this.#listeners ??= []).push(listener);
    return () => {
      const listeners = this.#listeners;
      const at = listeners ? listeners.indexOf(listener) : -1;
      if (at >= 0) listeners!.splice(at, 1);
    };
  }

  /** Ends the call early with `reason`, unless it already has; `first` runs before the signal and listeners hear of it. */
  protected cancel(reason: unknown, first?: () => void): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    first?.();
    this.#controller?.abort(reason);
    if (listeners) for (const listener of listeners) listener(reason);
  }

  /** Stops telling listeners (the call is over). */
  protected forgetListeners(): void {
    this.#listeners = undefined;
  }
}

function noop(): void {}
