const MIN_CAPACITY = 16;

/**
 * A first-in first-out queue on a ring buffer: `push`, `shift`, `peek` and
 * `at` in O(1) (`push` amortized). The buffer is allocated on the first push,
 * grows by doubling and shrinks by half once it is three-quarters empty, so
 * it holds memory in proportion to what it holds, not to the most it ever held.
 */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  #size = 0;

  /** Items held. */
  get length(): number {
    return this.#size;
  }

  /** Adds `item` at the back. */
  push(item: T): void {
    if (this.#size === this.#items.length) this.#resize(Math.max(MIN_CAPACITY, this.#items.length * 2));
    this.#items[(this.#head + this.#size) & (this.#items.length - 1)] = item;
    this.#size++;
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#size--;
    if (this.#items.length > MIN_CAPACITY && this.#size < this.#items.length / 4) this.#resize(this.#items.length / 2);
    return item;
  }

  /** The oldest item, left in place. */
  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#items[this.#head];
  }

  /** The item `index` places from the oldest (0 = oldest). */
  at(index: number): T | undefined {
    if (index < 0 || index >= this.#size) return undefined;
    return this.#items[(this.#head + index) & (this.#items.length - 1)];
  }

  /** Removes everything. */
  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#size = 0;
  }

  /** The items, oldest first. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.#size; i++) yield this.#items[(this.#head + i) & (this.#items.length - 1)]!;
  }

  #resize(capacity: number): void {
    const items = new Array<T | undefined>(capacity);
    for (let i = 0; i < this.#size; i++) items[i] = this.#items[(this.#head + i) & (this.#items.length - 1)];
    this.#items = items;
    this.#head = 0;
  }
}
