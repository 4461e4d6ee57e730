import type { Clock } from "../../core/clock.js";

/** A clock that moves only when told to. */
export interface FakeClock {
  readonly now: Clock;
  advance(ms: number): void;
}

export function fakeClock(start = 1_700_000_000_000): FakeClock {
  let time = start;
  return {
    now: () => time,
    advance(ms) {
      time += ms;
    },
  };
}
