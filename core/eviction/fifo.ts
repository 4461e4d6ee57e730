import { IndexLists } from "./index-lists.js";
import { NO_SLOT, type EvictionPolicy } from "./policy.js";

const LIST = 0;

/**
 * First in, first out: entries are queued by their last write (overwriting a
 * key re-queues it at the tail); reads do not reorder. The head is evicted.
 * O(1) for every operation.
 */
export class FifoPolicy implements EvictionPolicy {
  /** @inheritdoc */
  readonly name = "fifo";
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

  /** Reads never reorder a FIFO queue. */
  onAccess(): void {}

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
