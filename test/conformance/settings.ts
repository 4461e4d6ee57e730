/** How the conformance suite runs, read once from the environment. */
export interface ConformanceSettings {
  /** Random command sequences per property and deployment (`CONFORMANCE_RUNS`). */
  readonly runs: number;
  /** Random command sequences with faults, on the deployment that can suffer them: {@link runs} / {@link RUNS_PER_FAULT_RUN}, at least 1. */
  readonly faultRuns: number;
  /** Longest command sequence (`CONFORMANCE_MAX_COMMANDS`). */
  readonly maxCommands: number;
  /** Replay: fast-check's seed, path and commands replayPath from a failure report. */
  readonly seed: number | undefined;
  readonly path: string | undefined;
  readonly replayPath: string | undefined;
  /** Stop shrinking after this long and report the smallest failure so far (`CONFORMANCE_SHRINK_MS`). */
  readonly shrinkBudgetMs: number;
}

/** Runs per deployment under plain `npm test`: each deployment's property stays well under a minute on 2 cores. */
export const DEFAULT_RUNS = 100;

/** A run with faults costs seconds of real time (about as much as this many runs without): there are this many times fewer. */
export const RUNS_PER_FAULT_RUN = 25;

function positiveInteger(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

/** The settings from `env` (process.env by default). */
export function conformanceSettings(env: Readonly<Record<string, string | undefined>> = process.env): ConformanceSettings {
  const seed = env.CONFORMANCE_SEED;
  if (seed !== undefined && seed !== "" && !Number.isInteger(Number(seed))) throw new Error(`CONFORMANCE_SEED must be an integer, got ${JSON.stringify(seed)}`);
  const runs = positiveInteger("CONFORMANCE_RUNS", env.CONFORMANCE_RUNS, DEFAULT_RUNS);
  return {
    runs,
    faultRuns: Math.ceil(runs / RUNS_PER_FAULT_RUN),
    maxCommands: positiveInteger("CONFORMANCE_MAX_COMMANDS", env.CONFORMANCE_MAX_COMMANDS, 40),
    seed: seed === undefined || seed === "" ? undefined : Number(seed),
    path: env.CONFORMANCE_PATH || undefined,
    replayPath: env.CONFORMANCE_REPLAY_PATH || undefined,
    shrinkBudgetMs: positiveInteger("CONFORMANCE_SHRINK_MS", env.CONFORMANCE_SHRINK_MS, 20_000),
  };
}
