import { mix32 } from "./hash.js";
import { ShadowCache } from "./shadow-cache.js";
import { MAX_WINDOW_SHARE, MIN_WINDOW_SHARE, type TinyLfuLimits } from "./window-tinylfu.js";

/** The shadows run at the window share plus and minus this. */
export const CLIMBER_PROBE_SHARE = 0.0625;
/** Where the upper shadow runs until the first decision, which can jump the window there. */
export const CLIMBER_BRACKET_SHARE = 0.5;
/** Share of the capacity one step moves the window (Caffeine's 6.25%); strong evidence moves it up to twice as far. */
export const CLIMBER_STEP_SHARE = 0.0625;
/** Sampled requests per shadow entry in one sample (the decision period). */
export const CLIMBER_SAMPLE_PER_ENTRY = 2;
/** The shadows hold at least this many entries (the key sample is as sparse as this allows). */
export const MIN_SHADOW_ENTRIES = 256;
/** How many standard deviations the shadows' difference must reach before the window moves. */
const SIGNIFICANCE = 2;
/** The same for the first, bracketing decision, whose jump is larger and costlier when wrong. */
const BRACKET_SIGNIFICANCE = 3;
/** Samples over which votes accumulate while they are not significant; then they are dropped. */
const MAX_SAMPLES_PER_DECISION = 4;
/** Largest move, in steps. */
const MAX_STEPS = 2;
/** Seed of the key sample (independent of the sketch's hashing). */
const SAMPLE_SEED = 0x6a09e667;

/**
 * The hill climber that sizes W-TinyLFU's admission window. Like
 * Caffeine's it moves the window in steps of 6.25% of the capacity
 * towards the higher hit rate; unlike Caffeine's, the hit rates it
 * compares are measured side by side rather than one sample after
 * another, so workload phases (which swing a real trace's hit rate by
 * 5–10 points from sample to sample) do not steer it.
 *
 * Two ShadowCaches, miniatures of the cache holding key hashes only, run
 * at the window share minus and plus CLIMBER_PROBE_SHARE on a spatial
 * sample of the keys (a fixed 1 in R by hash, R a power of two chosen so
 * that each shadow holds about MIN_SHADOW_ENTRIES or more; R = 1 for
 * small caches). After each sample of CLIMBER_SAMPLE_PER_ENTRY requests
 * per shadow entry, the requests on which exactly one shadow hit decide:
 * when their imbalance is at least SIGNIFICANCE standard deviations
 * (a sign test), the window moves one step that way, two when the
 * evidence is twice as strong, and the shadows follow. Votes that are
 * not yet significant carry over, for up to MAX_SAMPLES_PER_DECISION
 * samples.
 *
 * Until the first decision the upper shadow runs at CLIMBER_BRACKET_SHARE
 * (50%) rather than one step up, and that decision (at 3 standard
 * deviations) either leaves the window where it is or moves it there: a
 * short, recency-biased trace is mostly over before 6.25% steps would
 * bring the window from 1% to where it belongs.
 *
 * Cost: each sampled request is replayed on both shadows; memory is two
 * shadows of capacity / R entries (about 40 bytes each).
 */
export class WindowClimber {
  readonly #mask: number;
  readonly #samplePeriod: number;
  readonly #below: ShadowCache;
  readonly #above: ShadowCache;
  #share: number;
  /** Whether the first (bracketing) decision is still to come. */
  #bracketing = true;
  #requests = 0;
  #samples = 0;
  #upVotes = 0;
  #downVotes = 0;

  /**
   * @param limits the real cache's bounds
   * @param expectedEntries entries the real cache holds when full
   * @param share the window's current share of the capacity
   */
  constructor(limits: TinyLfuLimits, expectedEntries: number, share: number) {
    let rate = 1;
    while (expectedEntries / (rate * 2) >= MIN_SHADOW_ENTRIES && rate < 2 ** 30) rate *= 2;
    this.#mask = rate - 1;
    const shadowLimits = {
      maxEntries: Number.isFinite(limits.maxEntries) ? Math.max(1, Math.floor(limits.maxEntries / rate)) : Infinity,
      maxBytes: limits.maxBytes / rate,
    };
    const shadowEntries = Math.max(1, Math.floor(expectedEntries / rate));
    this.#samplePeriod = CLIMBER_SAMPLE_PER_ENTRY * shadowEntries;
    this.#share = share;
    this.#below = new ShadowCache(shadowLimits, clampShare(share - CLIMBER_PROBE_SHARE), shadowEntries);
    this.#above = new ShadowCache(shadowLimits, Math.max(CLIMBER_BRACKET_SHARE, clampShare(share + CLIMBER_PROBE_SHARE)), shadowEntries);
  }

  /** The window share the climber currently wants. */
  get share(): number {
    return this.#share;
  }

  /** One in how many keys the shadows see. */
  get sampleRate(): number {
    return this.#mask + 1;
  }

  /** Whether requests for the key hashing to `hash` are in the sample (only those need `observe`). */
  samples(hash: number): boolean {
    return (mix32(hash ^ SAMPLE_SEED) & this.#mask) === 0;
  }

  /**
   * One request of the real cache (a hit, or a miss followed by a store)
   * for a sampled key (see `samples`) hashing to `hash`, of `size` bytes.
   * True when it ended a sample that moved the window: read `share` then.
   */
  observe(hash: number, size: number): boolean {
    const belowHit = this.#below.request(hash, size);
    const aboveHit = this.#above.request(hash, size);
    if (aboveHit !== belowHit) {
      if (aboveHit) this.#upVotes++;
      else this.#downVotes++;
    }
    if (++this.#requests < this.#samplePeriod) return false;
    return this.#decide();
  }

  #decide(): boolean {
    const votes = this.#upVotes + this.#downVotes;
    const z = (this.#upVotes - this.#downVotes) / Math.sqrt(Math.max(1, votes));
    const significance = this.#bracketing ? BRACKET_SIGNIFICANCE : SIGNIFICANCE;
    this.#requests = 0;
    if (Math.abs(z) < significance && ++this.#samples < MAX_SAMPLES_PER_DECISION) return false;
    this.#samples = 0;
    this.#upVotes = 0;
    this.#downVotes = 0;
    if (Math.abs(z) < significance) return false;
    let share: number;
    if (this.#bracketing) {
      this.#bracketing = false;
      share = z > 0 ? this.#above.windowShare : this.#share;
    } else {
      const steps = Math.min(Math.abs(z) / SIGNIFICANCE, MAX_STEPS);
      share = clampShare(this.#share + Math.sign(z) * steps * CLIMBER_STEP_SHARE);
    }
    this.#below.windowShare = clampShare(share - CLIMBER_PROBE_SHARE);
    this.#above.windowShare = clampShare(share + CLIMBER_PROBE_SHARE);
    if (share === this.#share) return false;
    this.#share = share;
    return true;
  }
}

function clampShare(share: number): number {
  return Math.min(MAX_WINDOW_SHARE, Math.max(MIN_WINDOW_SHARE, share));
}
