import { StalenessLog } from "../helpers/eventually.js";

/**
 * What one deployment's runs exercised: how often each operation met each
 * state of its key (fresh, stale, absent, refused), and how stale reads
 * were where they may lag.
 */
export class RunStats {
  readonly staleness = new StalenessLog();
  readonly #coverage = new Map<string, Map<string, number>>();

  /** Counts one step of `op` that met `state`. */
  saw(op: string, state: string): void {
    let states = this.#coverage.get(op);
    if (states === undefined) this.#coverage.set(op, (states = new Map()));
    states.set(state, (states.get(state) ?? 0) + 1);
  }

  /** One line per operation, e.g. "has: fresh 120, stale 8, absent 300, refused 20". */
  coverage(): string[] {
    return [...this.#coverage]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([op, states]) => `${op}: ${[...states].sort(([a], [b]) => a.localeCompare(b)).map(([state, n]) => `${state} ${n}`).join(", ")}`);
  }
}
