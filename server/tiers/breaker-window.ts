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

  constructor(windowMs: number, readonly buckets = BREAKER_WINDOW_BUCKETS) {
    this.#timer = setInterval(() => this.controller.emit("rotate"), Math.max(1, Math.floor(windowMs / buckets)));
    this.#timer.unref();
  }

  /** Empties the window. */
  clear(): void {
    for (let i = 0; i < this.buckets; i++) this.controller.emit("rotate");
  }

  /** Stops turning it. */
  stop(): void {
    clearInterval(this.#timer);
  }
}
