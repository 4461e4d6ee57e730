import { LIST, SingleListPolicy } from "./single-list.js";

/**
 * Least recently used: reads and writes move an entry to the tail; the head
 * is evicted. O(1) for every operation (one intrusive list over slots).
 */
export class LruPolicy extends SingleListPolicy {
  /** @inheritdoc */
  readonly name = "lru";

  /** @inheritdoc */
  onAccess(slot: number): void {
    this.lists.moveToTail(LIST, slot);
  }
}
