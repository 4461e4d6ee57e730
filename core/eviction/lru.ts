import { IndexLists } from "./index-lists.js";
import { NO_SLOT, type EvictionPolicy } from "./policy.js";

const LIST = 0;

/**
 * Least recently used: reads and writes move an entry to the tail; the head
 * is evicted. O(1) for every operation (one intrusive list over slots).
 */
export class LruPolicy implements EvictionPolicy {
  /** @inheritdoc */
  readonly name = "lru";
  /** @inheritdoc */
  readonly reservedSlots = 1;
  readonly #lists: IndexLists;

  /** @param capacity initial slot capacity */
  constructor(capacity: number) {
    this.#lists = new IndexLists(1, capacity);
  }

  /** @inheritdoc */
  resize(capacity: number): void {
    this.#lists.resize(capacity);
  }

  /** @inheritdoc */
  onInsert(slot: number): void {
    this.#lists.append(LIST, slot);
  }

  /** @inheritdoc */
  onAccess(slot: number): void {
    this.#lists.moveToTail(LIST, slot);
  }

  /** @inheritdoc */
  onReplace(slot: number): void {
    this.#lists.moveToTail(LIST, slot);
  }

  /** @inheritdoc */
  onRemove(slot: number): void {
    this.#lists.unlink(slot);
  }

  /** @inheritdoc */
  victim(): number {
    const head = this.#lists.head(LIST);
    return head === LIST ? NO_SLOT : head;
  }

  /** @inheritdoc */
  clear(): void {
    this.#lists.reset();
  }
}
