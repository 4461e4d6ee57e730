import type { EvictionPolicy, SlotStore } from "./policy.js";
import { WindowClimber } from "./window-climber.js";
import { INITIAL_WINDOW_SHARE, WindowTinyLfu, tinyLfuHash, type TinyLfuLimits } from "./window-tinylfu.js";

export type { TinyLfuLimits } from "./window-tinylfu.js";

/**
 * Adaptive W-TinyLFU, the design of Caffeine: an LRU admission window in
 * front of a segmented-LRU main space, admission by a frequency sketch
 * (count-min sketch behind a doorkeeper, halved periodically), and a
 * window whose share of the capacity a hill climber moves between 0.1%
 * and 99% (WindowTinyLfu for the structure, WindowClimber for the
 * climber). Recency-biased workloads get a large window, close to LRU;
 * frequency-biased ones a small one.
 *
 * A write whose entry loses admission is refused (set returns false).
 * Sizes: see WindowTinyLfu (bounded in entries and bytes; a candidate
 * must outweigh all the victims it displaces together).
 *
 * Every operation is O(1) amortized plus hashing the key (FNV-1a) once
 * per insert; hits and admission contests use the hash kept per slot.
 * Memory: 12 bytes per slot, the sketch (4 bytes per expected entry) and
 * the doorkeeper (half a byte), both rounded up to powers of two, and the
 * climber's two shadows (about 100 bytes per entry, at least 256 entries
 * each, 1 in R keys).
 */
export class TinyLfuPolicy implements EvictionPolicy {
  /** @inheritdoc */
  readonly name = "tinylfu";
  /** @inheritdoc */
  readonly reservedSlots = WindowTinyLfu.RESERVED_SLOTS;
  readonly #core: WindowTinyLfu;
  readonly #store: SlotStore;
  readonly #limits: TinyLfuLimits;
  /** Created up front for an entry-bounded tier; when first full for a byte-bounded one (its entry count is known then). */
  #climber: WindowClimber | undefined;

  /**
   * @param capacity initial slot capacity
   * @param limits the tier's bounds
   * @param store the tier's per-slot sizes and keys
   */
  constructor(capacity: number, limits: TinyLfuLimits, store: SlotStore) {
    this.#store = store;
    this.#limits = { maxEntries: limits.maxEntries, maxBytes: limits.maxBytes };
    const slots = { sizeAt: (slot: number) => store.sizeAt(slot) };
    const countBound = Number.isFinite(limits.maxEntries);
    this.#core = new WindowTinyLfu(capacity, this.#limits, slots, countBound ? limits.maxEntries : capacity);
    this.#climber = countBound ? new WindowClimber(this.#limits, limits.maxEntries, INITIAL_WINDOW_SHARE) : undefined;
  }

  /** The window's current share of the capacity (for tests and diagnostics). */
  get windowShare(): number {
    return this.#core.windowShare;
  }

  /** @inheritdoc */
  resize(capacity: number): void {
    this.#core.resize(capacity);
    if (!Number.isFinite(this.#limits.maxEntries)) this.#core.expectEntries(capacity);
  }

  /** @inheritdoc */
  onInsert(slot: number, key: string): void {
    const hash = tinyLfuHash(key);
    this.#observe(hash, slot);
    this.#core.insert(slot, hash);
  }

  /** @inheritdoc */
  onAccess(slot: number): void {
    this.#core.access(slot);
    this.#observe(this.#core.hashAt(slot), slot);
  }

  /** @inheritdoc */
  onReplace(slot: number, _key: string, oldSize: number): void {
    this.#observe(this.#core.hashAt(slot), slot);
    this.#core.replace(slot, oldSize);
  }

  /** @inheritdoc */
  onRemove(slot: number): void {
    this.#core.remove(slot);
  }

  /** @inheritdoc */
  victim(): number {
    this.#climber ??= new WindowClimber(this.#limits, Math.max(1, this.#core.size), this.#core.windowShare);
    return this.#core.victim();
  }

  /** @inheritdoc */
  clear(): void {
    this.#core.clear();
    this.#core.windowShare = INITIAL_WINDOW_SHARE;
    this.#climber = Number.isFinite(this.#limits.maxEntries)
      ? new WindowClimber(this.#limits, this.#limits.maxEntries, INITIAL_WINDOW_SHARE)
      : undefined;
  }

  /** Let the climber see a request, and follow it when it moves the window. */
  #observe(hash: number, slot: number): void {
    const climber = this.#climber;
    if (climber === undefined || !climber.samples(hash)) return;
    if (climber.observe(hash, this.#store.sizeAt(slot))) this.#core.windowShare = climber.share;
  }
}
