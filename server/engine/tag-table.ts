import type { BudgetedTier } from "./memory-budget.js";

/** Bytes of one remembered tag besides its name (map entry, number, bookkeeping), generously. */
export const TAG_OVERHEAD_BYTES = 96;

/**
 * The invalidation epochs of one namespace's tags that this server instance
 * knows, bounded (least recently used goes first; it counts in the memory
 * budget as a {@link BudgetedTier}).
 *
 * Epochs come from one counter per namespace, kept by the durable tier (or by
 * this table when there is none): InvalidateTags bumps it and records the new
 * value for each tag; a write records in its envelope the counter as it read
 * it before writing. A tagged value is served only while none of its tags has
 * an epoch above the one it was written with, so an invalidation is one small
 * write, whatever the number of values it hides, and no clock is involved
 * (skewed clocks between instances cannot make a hidden value readable).
 *
 * - With a durable tier the table is a cache: a tag it does not hold is read
 *   from the durable tier; an evicted one is read again. Reads that started
 *   before a {@link forget} (a change heard from elsewhere, or a resync), or
 *   before the eviction of an invalidated tag, are not remembered: they may
 *   predate it, and would bring an older epoch back.
 * - Without one the table is the truth: it holds the namespace counter, and an
 *   evicted tag raises a floor that every unknown tag is taken to have (values
 *   written before it with any unknown tag are hidden: a miss, never a stale hit).
 */
export class TagTable implements BudgetedTier {
  readonly #epochs = new Map<string, number>();
  #bytes = 0;
  /** Bumped by every forget, and by evicting a tag known to be invalidated: reads that started before it are not remembered. */
  #generation = 0;
  /** The namespace counter (authoritative only without a durable tier). */
  counter = 0;
  /** Without a durable tier: the epoch an unknown tag is taken to have. */
  floor = 0;

  constructor(
    /** Most tags held. */
    readonly maxTags: number,
    /** True when the table is the truth (no durable tier): evicting raises the floor. */
    readonly authoritative: boolean,
  ) {}

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#epochs.size;
  }

  get generation(): number {
    return this.#generation;
  }

  /** The epoch of `tag`, or undefined when unknown here (with a durable tier: ask it). */
  epochOf(tag: string): number | undefined {
    const epoch = this.#epochs.get(tag);
    if (epoch === undefined) return this.authoritative ? this.floor : undefined;
    this.#epochs.delete(tag);
    this.#epochs.set(tag, epoch);
    return epoch;
  }

  /**
   * Remembers epochs read at `generation` (ignored when a forget came since);
   * an epoch never goes down. False when it stopped before the last tag
   * (storing one evicted an invalidated tag): the rest were left as they were.
   */
  remember(tags: readonly string[], epochs: readonly number[], generation = this.#generation): boolean {
    for (let i = 0; i < tags.length; i++) {
      // Checked before each tag: storing one may evict another of the list, which a stale epoch must not bring back.
      if (generation !== this.#generation) return false;
      this.#set(tags[i]!, epochs[i]!);
    }
    return true;
  }

  /** Without a durable tier: bumps the counter and gives it to every tag; the new epoch. */
  invalidate(tags: readonly string[]): number {
    const epoch = ++this.counter;
    for (const tag of tags) this.#set(tag, epoch);
    return epoch;
  }

  /** Forgets what is known of `tags` (all of them when undefined): they are read again. */
  forget(tags?: readonly string[]): void {
    this.#generation++;
    if (tags === undefined) {
      this.#epochs.clear();
      this.#bytes = 0;
      return;
    }
    for (const tag of tags) this.#remove(tag);
  }

  /** Forgets the least recently used tag; the bytes freed. */
  evictOne(): number {
    const oldest = this.#epochs.keys().next();
    if (oldest.done) return 0;
    const before = this.#bytes;
    const epoch = this.#epochs.get(oldest.value)!;
    if (this.authoritative) this.floor = Math.max(this.floor, epoch);
    // A read that started before the epoch was learned could bring an older one back: such reads are not remembered.
    else if (epoch > 0) this.#generation++;
    this.#remove(oldest.value);
    return before - this.#bytes;
  }

  #set(tag: string, epoch: number): void {
    const known = this.#epochs.get(tag);
    if (known !== undefined) this.#epochs.delete(tag);
    else this.#bytes += 2 * tag.length + TAG_OVERHEAD_BYTES;
    this.#epochs.set(tag, Math.max(known ?? 0, epoch));
    while (this.#epochs.size > this.maxTags) this.evictOne();
  }

  #remove(tag: string): void {
    if (this.#epochs.delete(tag)) this.#bytes -= 2 * tag.length + TAG_OVERHEAD_BYTES;
  }
}
