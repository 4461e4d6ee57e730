import { NO_SLOT } from "./policy.js";

/**
 * A binary min-heap of slots keyed by absolute expiry time, with a position
 * index so any slot can be updated or removed in O(log n). Only slots with a
 * non-zero expiry are in the heap. `times[slot]` is the slot's expiry
 * (0 = never). Costs 16 bytes per slot, allocated on first use of a TTL.
 */
export class ExpiryHeap {
  /** Absolute expiry per slot in clock milliseconds; 0 = never. */
  times: Float64Array;
  /** 1 + index in #heap, or 0 when the slot is not in the heap. */
  #pos: Uint32Array;
  #heap: Uint32Array;
  #length = 0;

  /** @param capacity initial slot capacity */
  constructor(capacity: number) {
    this.times = new Float64Array(capacity);
    this.#pos = new Uint32Array(capacity);
    this.#heap = new Uint32Array(capacity);
  }

  /** Slots currently scheduled to expire. */
  get size(): number {
    return this.#length;
  }

  /** Grow to hold slots `< capacity`. */
  resize(capacity: number): void {
    if (capacity <= this.times.length) return;
    const times = new Float64Array(capacity);
    times.set(this.times);
    this.times = times;
    const pos = new Uint32Array(capacity);
    pos.set(this.#pos);
    this.#pos = pos;
    const heap = new Uint32Array(capacity);
    heap.set(this.#heap.subarray(0, this.#length));
    this.#heap = heap;
  }

  /** Schedule `slot` to expire at `expiresAt` (0 unschedules it). */
  set(slot: number, expiresAt: number): void {
    if (expiresAt === 0) {
      this.remove(slot);
      return;
    }
    const old = this.times[slot] as number;
    this.times[slot] = expiresAt;
    const pos = this.#pos[slot] as number;
    if (pos === 0) {
      const i = this.#length++;
      this.#heap[i] = slot;
      this.#pos[slot] = i + 1;
      this.#up(i);
    } else if (expiresAt < old) {
      this.#up(pos - 1);
    } else if (expiresAt > old) {
      this.#down(pos - 1);
    }
  }

  /** Unschedule `slot` if scheduled; its time becomes 0. */
  remove(slot: number): void {
    this.times[slot] = 0;
    const pos = this.#pos[slot] as number;
    if (pos === 0) return;
    this.#pos[slot] = 0;
    const i = pos - 1;
    const last = this.#heap[--this.#length] as number;
    if (i === this.#length) return;
    this.#heap[i] = last;
    this.#pos[last] = i + 1;
    this.#up(i);
    this.#down(this.#pos[last] as number - 1);
  }

  /** The slot expiring first if it expires at or before `now`, else NO_SLOT. */
  expiredAt(now: number): number {
    if (this.#length === 0) return NO_SLOT;
    const slot = this.#heap[0] as number;
    return (this.times[slot] as number) <= now ? slot : NO_SLOT;
  }

  /** Unschedule everything. */
  clear(): void {
    for (let i = 0; i < this.#length; i++) {
      const slot = this.#heap[i] as number;
      this.#pos[slot] = 0;
      this.times[slot] = 0;
    }
    this.#length = 0;
  }

  #up(i: number): void {
    const heap = this.#heap;
    const times = this.times;
    const slot = heap[i] as number;
    const time = times[slot] as number;
    while (i > 0) {
      const parent = (i - 1) >>> 1;
      const other = heap[parent] as number;
      if ((times[other] as number) <= time) break;
      heap[i] = other;
      this.#pos[other] = i + 1;
      i = parent;
    }
    heap[i] = slot;
    this.#pos[slot] = i + 1;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const times = this.times;
    const length = this.#length;
    const slot = heap[i] as number;
    const time = times[slot] as number;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= length) break;
      const right = child + 1;
      if (right < length && (times[heap[right] as number] as number) < (times[heap[child] as number] as number)) {
        child = right;
      }
      const other = heap[child] as number;
      if ((times[other] as number) >= time) break;
      heap[i] = other;
      this.#pos[other] = i + 1;
      i = child;
    }
    heap[i] = slot;
    this.#pos[slot] = i + 1;
  }
}
