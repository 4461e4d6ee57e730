/** Whether the server should get traffic now, and why not. */
export interface Readiness {
  readonly ready: boolean;
  /** Short reason when not ready ("draining", "redis circuit breaker open"…). */
  readonly reason?: string;
}

/** What readiness is judged from. */
export interface ReadinessInputs {
  /** The server is shutting down (SIGTERM). */
  readonly draining: boolean;
  /** The durable tier, when it is a remote one that can be down. */
  readonly remote?: {
    readonly name: string;
    /** "closed", "open" or "half-open". */
    readonly breaker: string;
    /** The connection is up now. */
    readonly reachable: boolean;
    /** Changes can be announced to the other instances (else writes are refused). */
    readonly canAnnounce: boolean;
  };
}

/**
 * Ready unless draining, or the remote durable tier is unreachable, its
 * breaker is open, or this instance cannot announce its changes (writes
 * would be refused). Never sends anything: it reads state the tier keeps.
 */
export function readiness(inputs: ReadinessInputs): Readiness {
  if (inputs.draining) return { ready: false, reason: "draining" };
  return inputs.remote ? remoteReadiness(inputs.remote) : { ready: true };
}

/**
 * Whether the remote durable tier is known usable: breaker not open, the
 * connection up, changes announceable. Half-open with the connection up
 * counts as usable: the next call closes the breaker, and refusing traffic
 * until then would keep it half-open. Both `/readyz` and the gRPC health
 * entry `tiercache.durable` follow this judgement.
 */
export function remoteReadiness(remote: NonNullable<ReadinessInputs["remote"]>): Readiness {
  if (remote.breaker === "open") return { ready: false, reason: `${remote.name} circuit breaker open` };
  if (!remote.reachable) return { ready: false, reason: `${remote.name} unreachable` };
  if (!remote.canAnnounce) return { ready: false, reason: `${remote.name} invalidation channel down` };
  return { ready: true };
}
