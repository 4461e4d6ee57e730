/**
 * The README's coherence bound (two and a quarter heartbeats of 1 s, plus
 * delivery), rounded up: a read through another instance or a local tier
 * must show a change within this long.
 */
export const COHERENCE_BOUND_MS = 2_500;

/** How stale reads were, across a whole test. */
export class StalenessLog {
  /** Reads that needed more than one attempt. */
  retried = 0;
  /** Reads made. */
  reads = 0;
  /** Longest wait from a read's first attempt until one matched, in ms. */
  worstMs = 0;
  /** What was being read when the worst wait happened. */
  worstWhat = "";

  record(what: string, waitedMs: number, attempts: number): void {
    this.reads++;
    if (attempts > 1) this.retried++;
    if (waitedMs > this.worstMs) {
      this.worstMs = waitedMs;
      this.worstWhat = what;
    }
  }

  summary(): string {
    return `${this.reads} reads, ${this.retried} needed a re-read, worst staleness ${this.worstMs} ms${this.worstWhat ? ` (${this.worstWhat})` : ""}`;
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
      log.record(what, waitedMs, attempts);
      return { value, matched: true, waitedMs };
    }
    if (waitedMs > boundMs) {
      log.record(what, waitedMs, attempts);
      return { value, matched: false, waitedMs };
    }
    await sleep(Math.min(25, 1 + attempts));
  }
}
