import { IndexLists } from "./index-lists.js";
import { NO_SLOT, type EvictionPolicy } from "./policy.js";

/** The one list (index 0 of IndexLists). */
export const LIST = 0;

/**
 * A policy over one intrusive list of slots: writes append or move an entry
 * to the tail, the head is evicted. Subclasses say what a read does.
 * O(1) for every operation.
 */
export abstract class SingleListPolicy implements EvictionPolicy {
  /** @inheritdoc */
  abstract readonly name: "lru" | "fifo";
  /** @inheritdoc */
  readonly reservedSlots = 1;
  protected readonly lists: IndexLists;

  /** @param capacity initial slot capacity */
  constructor(capacity: number) {
    this.lists = new IndexLists(1, capacity);
  }

  /** @inheritdoc */
  resize(capacity: number): void {
    this.lists.resize(capacity);
  }

  /** @inheritdoc */
  onInsert(slot: number): void {
    this.lists.append(LIST, slot);
  }

  /** @inheritdoc */
  abstract onAccess(slot: number): void;

  /** @inheritdoc */
  onReplace(slot: number): void {
    this.lists.moveToTail(LIST, slot);
  }

  /** @inheritdoc */
  onRemove(slot: number): void {
    this.lists.unlink(slot);
  }

  /** @inheritdoc */
  victim(): number {
    const head = this.lists.head(LIST);
    return head === LIST ? NO_SLOT : head;
  }

  /** @inheritdoc */
  clear(): void {
    this.lists.reset();
  }
}
