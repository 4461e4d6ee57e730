import { RpcError, Status } from "../../client/index.js";
import type { Fault, FaultKind, Heal } from "../helpers/conformance-faults.js";
import { FAULT_BOUND_MS, type ReadBound } from "../helpers/eventually.js";

/**
 * How long after Redis answers again (SIGCONT, or the restart) a call may
 * still fail: an instance's breaker that opened stays open for
 * --redis-breaker-reset (2 s) before it lets a probe through, and ioredis
 * reconnects within 1 s; past that, with room for a loaded machine, the
 * service must answer again. Within the same time a read must match the
 * model (see {@link FAULT_BOUND_MS}).
 */
export const RECOVERY_MS = FAULT_BOUND_MS;

/** At most this many faults per run: each costs seconds of real time. */
export const MAX_FAULTS_PER_RUN = 2;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface ActiveFault {
  readonly fault: Fault;
  healed: Promise<void>;
}

/** True for the errors a call may end with while a fault is on: UNAVAILABLE, DEADLINE_EXCEEDED. */
export function isFaultError(error: unknown): boolean {
  return RpcError.is(error, Status.UNAVAILABLE) || RpcError.is(error, Status.DEADLINE_EXCEEDED);
}

/**
 * The faults of one run: puts each on when its step comes, ends it `ms`
 * later in the background while the next steps run, and tells the checks
 * what to accept meanwhile.
 *
 * - A call may fail with UNAVAILABLE or DEADLINE_EXCEEDED only if it began
 *   while Redis was paused or down, or within {@link RECOVERY_MS} after it
 *   answered again. A cut pub/sub connection is no excuse for a failure:
 *   Redis answers all along.
 * - A read must match the model within {@link FAULT_BOUND_MS}, counted from
 *   its first attempt, or from the moment Redis answered again if that was
 *   later; while Redis is paused or down it keeps reading.
 */
export class FaultTimeline {
  readonly #inject: (fault: Fault) => Promise<Heal>;
  readonly #begun: FaultKind[] = [];
  #active: ActiveFault | undefined;
  #redisDown = false;
  #redisBackAt = -Infinity;
  #failure: unknown;

  constructor(inject: (fault: Fault) => Promise<Heal>) {
    this.#inject = inject;
  }

  /** The kinds of the faults put on so far, in order. */
  get begun(): readonly FaultKind[] {
    return this.#begun;
  }

  /** Waits for the fault that is on (if any) to end; then puts `fault` on, to end `fault.ms` later. */
  async begin(fault: Fault): Promise<void> {
    await this.healed();
    const onRedis = fault.kind !== "cutSubscription";
    this.#redisDown ||= onRedis;
    this.#begun.push(fault.kind);
    const heal = await this.#inject(fault);
    const active: ActiveFault = { fault, healed: Promise.resolve() };
    active.healed = (async () => {
      try {
        await sleep(fault.ms);
        await heal();
      } catch (err) {
        this.#failure ??= err;
      } finally {
        if (onRedis) {
          this.#redisDown = false;
          this.#redisBackAt = Date.now();
        }
        if (this.#active === active) this.#active = undefined;
      }
    })();
    this.#active = active;
  }

  /** Resolves once no fault is on; throws if ending one failed (Redis did not come back). */
  async healed(): Promise<void> {
    await this.#active?.healed;
    if (this.#failure !== undefined) throw new Error(`a fault could not be ended: ${String(this.#failure)}`, { cause: this.#failure });
  }

  /** True when a call that began at `started` may have been kept from Redis by a fault: it began while Redis was down, or within {@link RECOVERY_MS} after. */
  disrupts(started: number): boolean {
    return this.#redisDown || started - this.#redisBackAt <= RECOVERY_MS;
  }

  /** True when a call that began at `started` and failed with `error` may have failed because of a fault. */
  excuses(started: number, error: unknown): boolean {
    return isFaultError(error) && this.disrupts(started);
  }

  /** The bound reads are held to in this run. */
  readonly readBound: ReadBound = {
    ms: FAULT_BOUND_MS,
    from: (started) => (this.#redisDown ? Infinity : Math.max(started, this.#redisBackAt)),
  };
}
