import { NO_SLOT } from "./policy.js";
import { WindowTinyLfu, type TinyLfuLimits } from "./window-tinylfu.js";

const INITIAL_SLOTS = 64;

/**
 * A Window TinyLFU cache that holds nothing but key hashes (and sizes):
 * it answers "would this request have hit?" for a window share of its
 * own. WindowClimber runs two of them on a sample of the keys to see which
 * way the real cache's window should move. A request for an absent hash
 * stores it, evicting as the real cache would (including refusing it).
 */
export class ShadowCache {
  readonly #limits: TinyLfuLimits;
  readonly #policy: WindowTinyLfu;
  readonly #index = new Map<number, number>();
  #sizes = new Float64Array(INITIAL_SLOTS);
  #free: number[] = [];
  #nextFresh = WindowTinyLfu.RESERVED_SLOTS;
  #bytes = 0;

  /**
   * @param limits bounds in entries and bytes (Infinity = unbounded in that unit)
   * @param windowShare the window's share of the capacity
   * @param expectedEntries entries the frequency sketch should tell apart
   */
  constructor(limits: TinyLfuLimits, windowShare: number, expectedEntries: number) {
    this.#limits = limits;
    const slots = { sizeAt: (slot: number) => this.#sizes[slot] as number };
    this.#policy = new WindowTinyLfu(INITIAL_SLOTS, limits, slots, expectedEntries);
    this.#policy.windowShare = windowShare;
  }

  /** The window's share of the capacity. */
  get windowShare(): number {
    return this.#policy.windowShare;
  }

  /** Move the window's share (see WindowTinyLfu.windowShare). */
  set windowShare(share: number) {
    this.#policy.windowShare = share;
  }

  /** Hashes held. */
  get size(): number {
    return this.#index.size;
  }

  /** Whether `hash` (a tinyLfuHash) is held; no side effects. */
  has(hash: number): boolean {
    return this.#index.has(hash);
  }

  /**
   * One request for the key whose tinyLfuHash is `hash`, of `size` bytes:
   * true on a hit; on a miss the hash is stored if admitted.
   */
  request(hash: number, size: number): boolean {
    const slot = this.#index.get(hash);
    if (slot !== undefined) {
      this.#policy.access(slot);
      return true;
    }
    if (size > this.#limits.maxBytes) return false;
    this.#store(hash, size);
    return false;
  }

  #store(hash: number, size: number): void {
    const slot = this.#allocate();
    this.#sizes[slot] = size;
    this.#index.set(hash, slot);
    this.#bytes += size;
    const policy = this.#policy;
    policy.insert(slot, hash);
    const { maxEntries, maxBytes } = this.#limits;
    while (this.#index.size > maxEntries || this.#bytes > maxBytes) {
      const victim = policy.victim();
      if (victim === NO_SLOT) return;
      this.#evict(victim);
      if (victim === slot) return;
    }
  }

  #evict(slot: number): void {
    this.#index.delete(this.#policy.hashAt(slot));
    this.#policy.remove(slot);
    this.#bytes -= this.#sizes[slot] as number;
    this.#free.push(slot);
  }

  #allocate(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    const slot = this.#nextFresh++;
    if (slot >= this.#sizes.length) {
      const capacity = this.#sizes.length * 2;
      const sizes = new Float64Array(capacity);
      sizes.set(this.#sizes);
      this.#sizes = sizes;
      this.#policy.resize(capacity);
    }
    return slot;
  }
}
