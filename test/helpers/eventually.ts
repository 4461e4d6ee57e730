/**
 * The README's coherence bound (two and a quarter heartbeats of 1 s, plus
 * delivery), rounded up: a read through another instance or a local tier
 * must show a change within this long.
 */
export const COHERENCE_BOUND_MS = 2_500;

/** How stale reads were, across a whole test. */
export class StalenessLog {
  /** Reads made. */
  reads = 0;
  /** Reads that matched, but not at the first attempt. */
  retried = 0;
  /** Reads that never matched within the bound (divergences, reported as failures). */
  unmatched = 0;
  /** Longest wait from a read's first attempt until one matched, in ms. */
  worstMs = 0;
  /** What was being read when the worst wait happened. */
  worstWhat = "";

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
    }
  }

  summary(): string {
    const unmatched = this.unmatched > 0 ? `, ${this.unmatched} never matched within ${COHERENCE_BOUND_MS} ms` : "";
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
 * Reads until `matches` accepts the result or `boundMs` of real time passed
 * since the first attempt. A read that throws ends it (errors are not
 * eventual). Records the wait in `log`.
 */
export async function readUntil<T>(what: string, read: () => Promise<T>, matches: (value: T) => boolean, log: StalenessLog, boundMs = COHERENCE_BOUND_MS): Promise<EventualRead<T>> {
  const started = Date.now();
  let attempts = 0;
  for (;;) {
    attempts++;
    const value = await read();
    const waitedMs = Date.now() - started;
    if (matches(value)) {
      log.record(what, waitedMs, attempts, true);
      return { value, matched: true, waitedMs };
    }
    if (waitedMs > boundMs) {
      log.record(what, waitedMs, attempts, false);
      return { value, matched: false, waitedMs };
    }
    await sleep(Math.min(25, 1 + attempts));
  }
}
