/** Milliseconds since the epoch; injectable so TTL tests are exact and instant. */
export type Clock = () => number;

/** Longest delay a Node timer takes (2^31-1 ms, about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The wall clock (`Date.now()`), the default for every tier. */
export const systemClock: Clock = () => Date.now();

/** How often a {@link coarseClock} reads its base clock at the latest, in reads. */
const READS_PER_TICK = 64;

/**
 * A clock for hot paths where reading the time costs more than the work:
 * it reads `base` again once `resolutionMs` has passed (a timer marks the
 * reading old) or after 64 reads, whichever comes first. It never runs ahead
 * of `base`; it lags it by at most `resolutionMs`, or by as long as the event
 * loop was blocked when no read came meanwhile.
 */
export function coarseClock(base: Clock = systemClock, resolutionMs = 1): Clock {
  let now = 0;
  let reads = 0;
  let current = false;
  const age = () => {
    current = false;
  };
  return () => {
    if (current && ++reads < READS_PER_TICK) return now;
    now = base();
    reads = 0;
    if (!current) {
      current = true;
      setTimeout(age, resolutionMs).unref();
    }
    return now;
  };
}
