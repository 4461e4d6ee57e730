/**
 * The range of durations (TTL, grace, negative TTL) that client and server
 * accept, stated once.
 */

/** The longest TTL accepted: about 100 years, far below float precision limits. */
export const MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000;

/**
 * A duration in whole ms, or the reason it is refused: it must be a finite
 * number from 0 to {@link MAX_TTL_MS}; a fraction is rounded up to the next
 * whole ms (1500.5 -> 1501, 0.2 -> 1), so a positive duration never becomes 0
 * ("no expiry").
 */
export function wholeDurationMs(name: string, ms: number): { ms: number } | { problem: string } {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > MAX_TTL_MS) {
    return { problem: `${name} ${String(ms)} is out of range: use a number of ms from 0 up to ${MAX_TTL_MS}` };
  }
  return { ms: Math.ceil(ms) };
}
