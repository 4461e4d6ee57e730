import type { DescMethod } from "@bufbuild/protobuf";

/**
 * RPCs meant to stay open for as long as the client wants (event streams,
 * LeaseSession): `--max-deadline` does not cut them (it bounds each call a
 * LeaseSession carries instead). `--max-concurrent-streams` still bounds
 * how many one connection holds.
 */
export const LONG_LIVED_METHODS: ReadonlySet<string> = new Set(["Watch", "LeaseSession"]);

/** The adapter's `maxDeadlineMs` for a server: `maxDeadlineMs` for every method but the long-lived ones. */
export function deadlineCeiling(maxDeadlineMs: number): (method: DescMethod) => number | undefined {
  return (method) => (LONG_LIVED_METHODS.has(method.name) ? undefined : maxDeadlineMs);
}
