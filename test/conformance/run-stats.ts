import type { FaultKind } from "../helpers/conformance-faults.js";
import { FAULT_BOUND_MS, StalenessLog } from "../helpers/eventually.js";

function count<K>(counts: Map<K, number>, key: K): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function list(counts: ReadonlyMap<string, number>, order: readonly string[] = []): string {
  const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  const sorted = [...counts].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
  return counts.size === 0 ? "none" : sorted.map(([name, n]) => `${name} ${n}`).join(", ");
}

const FAULT_KINDS: readonly FaultKind[] = ["pauseRedis", "killRedis", "cutSubscription"];

/**
 * What one deployment's runs exercised: how often each operation met each
 * state of its key (fresh, stale, absent, uncertain, refused), how stale
 * reads were where they may lag, and, in runs with faults, the faults, the
 * calls whose outcome they left unknown, and how stale reads were after them.
 */
export class RunStats {
  readonly staleness = new StalenessLog();
  /** Reads in runs with faults, once the run's first fault began; waits count from the later of a read's start and Redis answering again. */
  readonly afterFaults = new StalenessLog(FAULT_BOUND_MS);
  /** Runs with faults made. */
  faultRuns = 0;
  readonly #coverage = new Map<string, Map<string, number>>();
  readonly #faults = new Map<FaultKind, number>();
  readonly #unknown = new Map<string, number>();

  /** Counts one step of `op` that met `state`. */
  saw(op: string, state: string): void {
    let states = this.#coverage.get(op);
    if (states === undefined) this.#coverage.set(op, (states = new Map()));
    count(states, state);
  }

  /** Counts one fault step. */
  sawFault(kind: FaultKind): void {
    count(this.#faults, kind);
  }

  /** Counts one call of `op` that failed because of a fault, leaving its outcome unknown. */
  sawUnknownOutcome(op: string): void {
    count(this.#unknown, op);
  }

  /** One line per operation, e.g. "has: fresh 120, stale 8, absent 300, refused 20". */
  coverage(): string[] {
    return [...this.#coverage]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([op, states]) => `${op}: ${[...states].sort(([a], [b]) => a.localeCompare(b)).map(([state, n]) => `${state} ${n}`).join(", ")}`);
  }

  /** The summary of the runs with faults, one line. */
  faultSummary(): string {
    const steps = [...this.#faults.values()].reduce((a, b) => a + b, 0);
    const unknown = [...this.#unknown.values()].reduce((a, b) => a + b, 0);
    const worst = this.afterFaults.worstMs;
    return (
      `faults: ${this.faultRuns} runs, ${steps} fault steps (${list(this.#faults, FAULT_KINDS)}); ` +
      `${unknown} uncertain writes (outcome unknown: ${list(this.#unknown)}); ` +
      `${this.afterFaults.reads} reads after a fault began, ${this.afterFaults.unmatched} past the ${FAULT_BOUND_MS} ms bound; ` +
      `worst staleness after a fault: ${worst} ms${this.afterFaults.worstWhat ? ` (${this.afterFaults.worstWhat})` : ""}`
    );
  }
}
