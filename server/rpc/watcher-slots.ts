import { ValueTooLargeError } from "../../core/errors.js";

/**
 * Counts the server's open Watch streams against `--max-watchers`: each
 * stream takes a slot before it subscribes to anything and gives it back when
 * it ends, so a stream past the limit costs nothing but its refusal.
 */
export class WatcherSlots {
  #open = 0;

  /** @param max Most Watch streams open at once. */
  constructor(readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`max-watchers must be a whole number of at least 1, not ${max}`);
  }

  /** Watch streams open now. */
  get open(): number {
    return this.#open;
  }

  /**
   * Takes a slot, or throws {@link ValueTooLargeError} (RESOURCE_EXHAUSTED)
   * naming `max-watchers` when all are taken. Returns the function that gives
   * the slot back; calling it again does nothing.
   */
  acquire(): () => void {
    if (this.#open >= this.max) {
      throw new ValueTooLargeError(`too many Watch streams: this server serves at most max-watchers (${this.max}) at once; retry later`);
    }
    this.#open++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#open--;
    };
  }
}
