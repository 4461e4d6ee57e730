/**
 * The README's coherence bound (two and a quarter heartbeats of 1 s, plus
 * delivery), rounded up: a read through another instance or a local tier
 * must show a change within this long.
 */
export const COHERENCE_BOUND_MS = 2_500;

/**
 * The bound under faults, as the fault tests check it (test/faults,
 * coherence-run.ts): a local tier's 2.25 s, plus 0.75 s for delivery on a
 * loaded two-core machine. Instances promise 2.1 s plus delivery, local
 * tiers 2.25 s plus delivery (README, "Several server instances").
 */
export const FAULT_BOUND_MS = 2_250 + 750;

/** How long a read may keep differing, and from when. */
export interface ReadBound {
  /** ms a read may differ for, counted from {@link from}. */
  readonly ms: number;
  /**
   * The time the bound counts from for a read first tried at `started`:
   * `started` by default; later when a fault that was on meanwhile ended
   * later; Infinity while it is still on (keep reading).
   */
  readonly from?: (started: number) => number;
}

/** How stale reads were, across a whole test. */
export class StalenessLog {
  /** @param boundMs the bound the reads were held to, for the summary */
  constructor(readonly boundMs = COHERENCE_BOUND_MS) {}

  /** Reads made. */
  reads = 0;
  /** Reads that matched, but not at the first attempt. */
  retried = 0;
  /** Reads that never matched within the bound (divergences, reported as failures). */
  unmatched = 0;
  /** Longest wait from a read's first attempt (or the end of a fault, if later) until one matched, in ms. */
  worstMs = 0;
  /** What was being read when the worst wait happened. */
  worstWhat = "";
  /** The run under way, as its owner counts runs (set before each run), and the one the worst wait happened in. */
  currentRun: number | undefined;
  worstRun: number | undefined;

  record(what: string, waitedMs: number, attempts: number, matched: boolean): void {
    this.reads++;
    if (!matched) {
      this.unmatched++;
      return;
    }
    if (attempts > 1) this.retried++;
    if (waitedMs > this.worstMs) {
      this.worstMs = waitedMs;
      this.worstWhat = what;
      this.worstRun = this.currentRun;
    }
  }

  summary(): string {
    const unmatched = this.unmatched > 0 ? `, ${this.unmatched} never matched within ${this.boundMs} ms` : "";
    return `${this.reads} reads, ${this.retried} matched after re-reading${unmatched}; worst staleness of a read that matched: ${this.worstMs} ms${this.worstWhat ? ` (${this.worstWhat})` : ""}`;
  }
}

/** The last value read, and whether it matched before the bound passed. */
export interface EventualRead<T> {
  readonly value: T;
  readonly matched: boolean;
  readonly waitedMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Reads until `matches` accepts the result or the bound passed (by default
 * {@link COHERENCE_BOUND_MS} of real time since the first attempt). A read
 * that throws ends it (wrap the read to make errors eventual). Records the
 * wait in `log`.
 */
export async function readUntil<T>(
  what: string,
  read: () => Promise<T>,
  matches: (value: T) => boolean,
  log: StalenessLog,
  bound: ReadBound = { ms: COHERENCE_BOUND_MS },
): Promise<EventualRead<T>> {
  const started = Date.now();
  let attempts = 0;
  for (;;) {
    attempts++;
    const value = await read();
    const waitedMs = Math.max(0, Date.now() - (bound.from?.(started) ?? started));
    if (matches(value)) {
      log.record(what, waitedMs, attempts, true);
      return { value, matched: true, waitedMs };
    }
    if (waitedMs > bound.ms) {
      log.record(what, waitedMs, attempts, false);
      return { value, matched: false, waitedMs };
    }
    await sleep(Math.min(25, 1 + attempts));
  }
}

/** Waits until `check` holds, polling every 10 ms; throws after `ms`. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
