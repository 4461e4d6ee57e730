/** Milliseconds since the epoch; injectable so TTL tests are exact and instant. */
export type Clock = () => number;

/** The wall clock (`Date.now()`), the default for every tier. */
export const systemClock: Clock = () => Date.now();
