import { inspect, isDeepStrictEqual, type InspectOptionsStylized } from "node:util";

/** A key getMany does not return: what each possible state is compared with when the key is not fresh in it. */
export const NOT_RETURNED = Symbol("not returned");

/**
 * The results a call may give: one per state its keys may be in (see
 * PossibleStates), one alone when they are known. Prints as that one value,
 * else as `one of (a | b)`.
 */
export class OneOf<T> {
  readonly values: readonly T[];

  constructor(values: readonly T[]) {
    if (values.length === 0) throw new Error("OneOf needs at least one value");
    this.values = values;
  }

  /** The values, each once (compared as the suite compares values). */
  static distinct<T>(values: readonly T[]): OneOf<T> {
    const kept: T[] = [];
    for (const value of values) if (!kept.some((other) => isDeepStrictEqual(other, value))) kept.push(value);
    return new OneOf(kept);
  }

  /** True when `matches` accepts one of the values. */
  some(matches: (value: T) => boolean): boolean {
    return this.values.some(matches);
  }

  /** The one value, when there is only one. */
  get only(): T | undefined {
    return this.values.length === 1 ? this.values[0] : undefined;
  }

  [inspect.custom](_depth: number, options: InspectOptionsStylized, show: typeof inspect): string {
    const shown = this.values.map((value) => show(value, options));
    return shown.length === 1 ? shown[0]! : `one of (${shown.join(" | ")})`;
  }
}

/** `same` lifted to a OneOf of expected values: the actual result matches one of them. */
export function among<A, E>(same: (actual: A, expected: E) => boolean): (actual: A, expected: OneOf<E>) => boolean {
  return (actual, expected) => expected.some((value) => same(actual, value));
}
