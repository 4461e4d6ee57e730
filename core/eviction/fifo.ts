import { SingleListPolicy } from "./single-list.js";

/**
 * First in, first out: entries are queued by their last write (overwriting a
 * key re-queues it at the tail); reads do not reorder. The head is evicted.
 * O(1) for every operation.
 */
export class FifoPolicy extends SingleListPolicy {
  /** @inheritdoc */
  readonly name = "fifo";

  /** Reads never reorder a FIFO queue. */
  onAccess(): void {}
}
