/**
 * TTL jitter, stated once: how the server shortens a write's TTL, how it
 * tells clients the namespace's jitter (GetOrLeaseResponse.ttl_jitter_ppm),
 * and the shortest TTL a client may count on from that.
 */

/** Parts per million: the scale of GetOrLeaseResponse.ttl_jitter_ppm. */
const PPM = 1_000_000;

/** The TTL a write asking for `ttl` ms gets with `jitter` (0 to 1) and `random` in [0, 1): shortened by up to jitter × ttl, never below 1 ms. */
export function jitteredTtl(ttl: number, jitter: number, random: number): number {
  return Math.max(1, ttl - Math.floor(random * jitter * ttl));
}

/** `jitter` (0 to 1) in parts per million, rounded up, so that {@link shortestJitteredTtl} is never too long. */
export function jitterPpm(jitter: number): number {
  return Math.ceil(jitter * PPM);
}

/** The shortest TTL {@link jitteredTtl} may give a write asking for `ttl` ms in a namespace whose jitter is `ppm`; 0 or less when it may be as short as 1 ms. */
export function shortestJitteredTtl(ttl: number, ppm: number): number {
  return ttl - Math.ceil((ttl * Math.min(ppm, PPM)) / PPM);
}
