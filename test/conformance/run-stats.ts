import { StalenessLog } from "../helpers/eventually.js";
import type { KnownDivergence } from "./known-divergences.js";

/**
 * What one deployment's runs exercised: how often each operation met each
 * state of its key (fresh, stale, absent, refused), the steps left out for
 * tolerated divergences, and how stale reads were where they may lag.
 */
export class RunStats {
  readonly staleness = new StalenessLog();
  readonly #coverage = new Map<string, Map<string, number>>();
  readonly #skipped = new Map<KnownDivergence, number>();

  /** Counts one step of `op` that met `state`. */
  saw(op: string, state: string): void {
    let states = this.#coverage.get(op);
    if (states === undefined) this.#coverage.set(op, (states = new Map()));
    states.set(state, (states.get(state) ?? 0) + 1);
  }

  /** Counts one step left out because `reason` is tolerated. */
  skip(reason: KnownDivergence): void {
    this.#skipped.set(reason, (this.#skipped.get(reason) ?? 0) + 1);
  }

  /** One line per operation, e.g. "has: fresh 120, stale 8, absent 300, refused 20". */
  coverage(): string[] {
    return [...this.#coverage]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([op, states]) => `${op}: ${[...states].sort(([a], [b]) => a.localeCompare(b)).map(([state, n]) => `${state} ${n}`).join(", ")}`);
  }

  /** "N step(s) left out for name", per tolerated divergence that left any out. */
  skips(): string[] {
    return [...this.#skipped].map(([name, n]) => `${n} step(s) left out for ${name}`);
  }
}
