/**
 * Intrusive circular doubly linked lists over slot indexes, stored in two
 * typed arrays shared by all lists. Slot `s < sentinels` is the sentinel of
 * list `s`: `next[s]` is the list's head (oldest), `prev[s]` its tail
 * (newest); an empty list points to itself. Every operation is O(1) and
 * allocation-free; per slot the cost is 8 bytes.
 */
export class IndexLists {
  /** next[i]: the slot after i (towards the tail). */
  next: Uint32Array;
  /** prev[i]: the slot before i (towards the head). */
  prev: Uint32Array;
  readonly #sentinels: number;

  /** @param sentinels number of lists; their sentinels are slots 0..sentinels-1 */
  constructor(sentinels: number, capacity: number) {
    this.#sentinels = sentinels;
    this.next = new Uint32Array(Math.max(capacity, sentinels));
    this.prev = new Uint32Array(Math.max(capacity, sentinels));
    this.reset();
  }

  /** Grow to hold slots `< capacity`, keeping links. */
  resize(capacity: number): void {
    if (capacity <= this.next.length) return;
    const next = new Uint32Array(capacity);
    const prev = new Uint32Array(capacity);
    next.set(this.next);
    prev.set(this.prev);
    this.next = next;
    this.prev = prev;
  }

  /** Empty every list. */
  reset(): void {
    for (let s = 0; s < this.#sentinels; s++) {
      this.next[s] = s;
      this.prev[s] = s;
    }
  }

  /** Oldest slot of `list`, or `list` itself when empty. */
  head(list: number): number {
    return this.next[list] as number;
  }

  /** Append `slot` (not currently linked) at the tail of `list`. */
  append(list: number, slot: number): void {
    const next = this.next;
    const prev = this.prev;
    const tail = prev[list] as number;
    next[tail] = slot;
    prev[slot] = tail;
    next[slot] = list;
    prev[list] = slot;
  }

  /** Remove `slot` from whatever list holds it. */
  unlink(slot: number): void {
    const next = this.next;
    const prev = this.prev;
    const p = prev[slot] as number;
    const n = next[slot] as number;
    next[p] = n;
    prev[n] = p;
  }

  /** Move linked `slot` to the tail of `list`. */
  moveToTail(list: number, slot: number): void {
    if (this.prev[list] === slot) return;
    this.unlink(slot);
    this.append(list, slot);
  }
}
