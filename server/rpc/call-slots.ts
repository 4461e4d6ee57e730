/**
 * A bound on calls held at once across every stream that shares it (the
 * calls LeaseSession streams carry): a stream takes a slot for a call it
 * read, or refuses the call when none is free, and gives the slot back once
 * the call's handler has stopped and its answer is written, so many streams
 * together cannot hold more than `max` calls.
 */
export class CallSlots {
  readonly max: number;
  #used = 0;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`CallSlots needs a positive integer, got ${max}`);
    this.max = max;
  }

  /** Slots held now. */
  get used(): number {
    return this.#used;
  }

  /** Takes a slot if one is free. */
  tryTake(): boolean {
    if (this.#used >= this.max) return false;
    this.#used++;
    return true;
  }

  /** Gives a slot back (one never taken is ignored). */
  give(): void {
    if (this.#used > 0) this.#used--;
  }
}
