import { EventEmitter } from "node:events";

/** Buckets of the breaker's rolling window. */
export const BREAKER_WINDOW_BUCKETS = 10;

/**
 * Turns an opossum breaker's rolling window (its `rotateBucketController`):
 * one bucket every `windowMs / buckets` ms, as opossum's own timer would,
 * and all of them at once on {@link BreakerWindow.clear}, so that a breaker
 * that closes starts from an empty window. opossum keeps the window across a
 * close: the failures that opened the breaker (and every call refused while
 * it was open, which counts as a call that did not fail) would decide when
 * it opens again.
 */
export class BreakerWindow {
  /** The emitter to give opossum as `rotateBucketController`. */
  readonly controller = new EventEmitter();
  readonly #timer: NodeJS.Timeout;
  #epoch = 0;

  constructor(windowMs: number, readonly buckets = BREAKER_WINDOW_BUCKETS) {
    this.#timer = setInterval(() => this.controller.emit("rotate"), Math.max(1, Math.floor(windowMs / buckets)));
    this.#timer.unref();
  }

  /** Empties the window and starts a new epoch. */
  clear(): void {
    this.#epoch++;
    for (let i = 0; i < this.buckets; i++) this.controller.emit("rotate");
  }

  /**
   * How many times the window was emptied: an attempt that started in an
   * earlier epoch must not count when it settles, since its start was
   * emptied away with the window.
   */
  get epoch(): number {
    return this.#epoch;
  }

  /** Stops turning it. */
  stop(): void {
    clearInterval(this.#timer);
  }
}
