import type { Observed, TruthEntry } from "./redis-truth.js";

/** One key's value as one reader (an instance, or a client's local tier) returned it. */
export interface ReadObservation {
  readonly reader: string;
  readonly key: string;
  /** The value, or null when the reader found none. */
  readonly value: Observed;
  /** When the read was sent and when it came back, in ms. */
  readonly start: number;
  readonly end: number;
}

/** One write as a client issued it. */
export interface WriteRecord {
  readonly writer: string;
  readonly op: "set" | "setMany" | "delete" | "deleteMany" | "touch";
  readonly keys: readonly string[];
  /** What each key should hold if the write took effect (null for a delete); undefined for a touch. */
  readonly values: readonly Observed[] | undefined;
  readonly start: number;
  end: number;
  /** "OK", or the status name the client got (UNAVAILABLE, DEADLINE_EXCEEDED…): then the outcome is uncertain. */
  outcome: string;
}

/** What {@link analyzeStaleness} found. */
export interface StalenessReport {
  readonly reads: number;
  /** Reads that returned a value Redis no longer held (and had not just taken). */
  readonly staleReads: number;
  /** Changes of a key in Redis that some reader still had not seen more than the bound after Redis held them. */
  readonly stalePastBound: number;
  /** The longest any reader served a value after Redis had replaced it, in ms. */
  readonly worstMs: number;
  /** A few of the reads past the bound, for the failure message. */
  readonly examples: readonly string[];
  /** The stalest read, described. */
  readonly worst: string | undefined;
}

const same = (a: Observed, b: Observed) => JSON.stringify(a) === JSON.stringify(b);

/** Index of the last entry Redis applied at or before `at`, or -1. */
function currentAt(timeline: readonly TruthEntry[], at: number): number {
  let lo = 0;
  let hi = timeline.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (timeline[mid]!.at <= at) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/**
 * Measures how stale each read was against Redis's own timeline (see
 * RedisTruth). A read that began at `start` is fresh when it returned the
 * value Redis held at `start`, or one Redis took before the read came back.
 * Otherwise it is stale by `start` minus the moment Redis replaced that
 * value (for a value Redis never took, a failed write's: minus the moment
 * the write failed). Past `boundMs`, the missed change counts once in
 * `stalePastBound`. `slackMs` absorbs clock rounding between Redis and Node.
 */
export function analyzeStaleness(
  timeline: (key: string) => readonly TruthEntry[],
  reads: readonly ReadObservation[],
  writes: readonly WriteRecord[],
  boundMs: number,
  slackMs = 5,
): StalenessReport {
  const failedAt = new Map<string, number>();
  for (const write of writes) {
    write.keys.forEach((key, i) => {
      if (write.values) failedAt.set(`${key}\u0000${JSON.stringify(write.values[i])}`, write.end);
    });
  }

  let staleReads = 0;
  let worstMs = 0;
  let worst: string | undefined;
  const pastBound = new Set<string>();
  const examples: string[] = [];
  let counted = 0;
  for (const read of reads) {
    const entries = timeline(read.key);
    const idx = currentAt(entries, read.start);
    if (idx < 0) continue;
    counted++;
    let fresh = false;
    for (let j = idx; !fresh && j < entries.length && (j === idx || entries[j]!.at <= read.end + slackMs); j++) fresh = same(entries[j]!.value, read.value);
    if (fresh) continue;
    let ms: number | undefined;
    let missed = `${read.key}#${idx}`;
    for (let k = idx; k >= 0; k--) {
      if (same(entries[k]!.value, read.value)) {
        ms = read.start - entries[k + 1]!.at;
        missed = `${read.key}#${k + 1}`;
        break;
      }
    }
    if (ms === undefined) {
      // Redis never held it: a write that failed and was not applied (or not yet: then it is fresh).
      const end = failedAt.get(`${read.key}\u0000${JSON.stringify(read.value)}`);
      ms = end === undefined ? read.start - entries[0]!.at : read.start - end;
      if (ms <= 0) continue;
    }
    staleReads++;
    const described = `${read.reader} read ${read.key}=${JSON.stringify(read.value)} ${Math.round(ms)} ms after Redis replaced it (at +${Math.round(read.start - entries[0]!.at)} ms)`;
    if (ms > worstMs) [worstMs, worst] = [ms, described];
    if (ms > boundMs) {
      pastBound.add(missed);
      if (examples.length < 5) examples.push(described);
    }
  }
  return { reads: counted, staleReads, stalePastBound: pastBound.size, worstMs: Math.round(worstMs), examples, worst };
}
