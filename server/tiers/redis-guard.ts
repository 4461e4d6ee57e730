import CircuitBreaker from "opossum";
import { TierUnavailableError } from "../../core/errors.js";
import type { CallScope } from "../engine/durable-tier.js";
import { cancelReasonOf, raceCancel } from "../engine/scope-cancel.js";
import type { Logger } from "../logger.js";
import { AttemptEnd } from "./attempt-end.js";
import { BreakerWindow } from "./breaker-window.js";

/** State of the circuit breaker in front of Redis. */
export type BreakerState = "closed" | "open" | "half-open";

/** Resolved settings of a {@link RedisGuard} (see `RedisTierOptions` for their meaning and defaults). */
export interface RedisGuardOptions {
  readonly commandTimeoutMs: number;
  readonly retries: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly breakerErrorThresholdPercentage: number;
  readonly breakerVolumeThreshold: number;
  readonly breakerResetTimeoutMs: number;
  readonly breakerRollingWindowMs: number;
  readonly logger: Logger;
  readonly onBreakerStateChange?: ((state: BreakerState) => void) | undefined;
  /** Uniform random number in [0, 1) for backoff jitter (tests may fix it). @default Math.random */
  readonly random?: () => number;
}

/** One operation against Redis. */
export interface GuardedOperation<T> {
  /** Short name for errors and logs ("get", "setMany"…). */
  readonly name: string;
  /**
   * Whether running it twice leaves the same state and result as running it
   * once; only such operations are retried.
   */
  readonly idempotent: boolean;
  /**
   * Sends the command(s); called once per attempt. `attempt` ends when the
   * guard stops waiting for this attempt (it settled, timed out or was
   * cancelled); its commands must not be written to Redis after that.
   */
  run(attempt: AttemptEnd): Promise<T>;
}

/** Counters of a {@link RedisGuard} since creation. */
export interface RedisGuardStats {
  /** Operations passed to `exec`. */
  calls: number;
  /** Operations that rejected (after any retries). */
  failures: number;
  /** Attempts abandoned at their per-attempt timeout. */
  timeouts: number;
  /** Attempts made after a first one failed. */
  retries: number;
  /** Attempts refused at once because the breaker was open. */
  shortCircuited: number;
  /** Times the breaker opened. */
  breakerOpens: number;
}

type Attempt = () => Promise<unknown>;

/** An attempt that did not answer within its time budget. */
class AttemptTimeoutError extends Error {
  override readonly name = "AttemptTimeoutError";
  constructor(readonly ms: number) {
    super(`timed out after ${ms} ms`);
  }
}

/** Reply errors meaning "Redis cannot serve right now", worth a retry and counted by the breaker. */
const TRANSIENT_REPLIES = new Set(["LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY", "NOREPLICAS"]);

/**
 * The one guarded door to Redis (STYLE.md item 6). Every command of the Redis
 * tier goes through {@link RedisGuard.exec}, which reads, in order:
 *
 * 1. stop if the call was cancelled or its deadline passed;
 * 2. the opossum breaker: when open, fail at once (no retry);
 * 3. the attempt, bounded by min(commandTimeoutMs, time left to the deadline);
 * 4. on a transient failure of an idempotent operation, sleep with AWS
 *    "decorrelated jitter" (sleep = min(cap, random(base, previous × 3))) and
 *    go to 1, up to `retries` times, never past the deadline;
 * 5. otherwise reject with a {@link TierUnavailableError} whose message is
 *    short and secret-free (the original error is its `cause`).
 *
 * Each attempt counts separately in the breaker's rolling window, so an open
 * breaker also cuts a retry loop short. A breaker that closes starts from an
 * empty window ({@link BreakerWindow}): it opens again on the failures of the
 * attempts started since, neither at the first one nor only after as many as
 * it refused calls while open; an attempt started before the close that fails
 * after it does not count. Inside the breaker every attempt
 * has the whole `commandTimeoutMs`, and a timeout there counts as a failure.
 * A reply error that shows Redis is up but refuses this command (WRONGTYPE,
 * NOPERM…) is neither retried nor counted against the breaker. Neither an
 * abort of the call's signal nor a caller's deadline shorter than
 * `commandTimeoutMs` is Redis's fault: they end the wait (outside the
 * breaker) while the abandoned attempt still settles inside it. (When a
 * deadline cut attempts inside the breaker, one client sending calls with
 * deadlines of a few ms opened the breaker for every client.)
 */
export class RedisGuard {
  readonly #options: RedisGuardOptions;
  /** An attempt, and the window it started in ({@link BreakerWindow.epoch}). */
  readonly #breaker: CircuitBreaker<[Attempt, number], unknown>;
  readonly #window: BreakerWindow;
  readonly #random: () => number;
  readonly #stats: RedisGuardStats = { calls: 0, failures: 0, timeouts: 0, retries: 0, shortCircuited: 0, breakerOpens: 0 };
  #state: BreakerState = "closed";

  constructor(options: RedisGuardOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
    this.#window = new BreakerWindow(options.breakerRollingWindowMs);
    this.#breaker = new CircuitBreaker<[Attempt, number], unknown>((attempt) => attempt(), {
      name: "redis",
      timeout: false, // per-attempt timeouts depend on the deadline: applied inside the attempt
      errorThresholdPercentage: options.breakerErrorThresholdPercentage,
      volumeThreshold: options.breakerVolumeThreshold,
      resetTimeout: options.breakerResetTimeoutMs,
      rollingCountTimeout: options.breakerRollingWindowMs,
      rollingCountBuckets: this.#window.buckets,
      rotateBucketController: this.#window.controller,
      // Neither is read here; with them on, every second opossum concatenated and sorted the latency of every call in the window.
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      // An attempt that started before the window was last emptied is not counted when it fails after that.
      // opossum passes the fired arguments after the error; its types do not say so.
      errorFilter: (err: unknown, ...fired: unknown[]) => fired[1] !== this.#window.epoch || !countsAgainstBreaker(err),
    });
    this.#breaker.on("open", () => {
      this.#stats.breakerOpens++;
      const { failures, fires, timeouts } = this.#breaker.stats;
      this.#options.logger.warn("redis circuit breaker opened: failing fast", { failures, fires, timeouts, resetTimeoutMs: options.breakerResetTimeoutMs });
      this.#setState("open");
    });
    this.#breaker.on("halfOpen", () => {
      this.#options.logger.debug("redis circuit breaker half-open: trying one call");
      this.#setState("half-open");
    });
    this.#breaker.on("close", () => {
      this.#window.clear();
      this.#options.logger.info("redis circuit breaker closed: redis answers again");
      this.#setState("closed");
    });
  }

  /** The breaker's current state. */
  get state(): BreakerState {
    return this.#state;
  }

  /** A snapshot of the counters. */
  stats(): RedisGuardStats {
    return { ...this.#stats };
  }

  /** Runs `op` under the failure policy described on the class. */
  exec<T>(op: GuardedOperation<T>, scope?: CallScope): Promise<T> {
    this.#stats.calls++;
    // The first attempt without an async frame: it is the only one almost every call makes.
    let first: Promise<T>;
    try {
      first = this.#attemptNow(op, scope);
    } catch (err) {
      return Promise.reject(err);
    }
    return first.then(undefined, (error: unknown) => this.#afterFailure(op, scope, error));
  }

  /**
   * Tells the guard that Redis answered a command on a connection that came
   * back from a reconnection: an open breaker closes at once, as after a
   * probe that succeeded, instead of waiting out its reset timeout. A
   * breaker that opened on the failures of the reconnection's last moments
   * would otherwise keep Redis unused for up to the reconnect delay on top of
   * that timeout after Redis answered again. A shut-down breaker stays shut.
   */
  connectionConfirmed(): void {
    if (this.#state !== "closed" && !this.#breaker.isShutdown) this.#breaker.close();
  }

  /** Stops the breaker's timers; later calls fail with "tier closed". */
  close(): void {
    this.#breaker.shutdown();
    this.#window.stop();
  }

  /** Starts an attempt now (its failures reject), unless the call was cancelled or its deadline passed: then throws why. */
  #attemptNow<T>(op: GuardedOperation<T>, scope: CallScope | undefined): Promise<T> {
    const cancelled = cancelReasonOf(scope);
    if (cancelled !== undefined) throw this.#fail(op, "call cancelled", cancelled);
    const left = (scope?.deadline ?? Infinity) - Date.now();
    if (!(left > 0)) throw this.#fail(op, "deadline passed");
    return this.#attempt(op, left, scope);
  }

  /** After a failed attempt: rejects with why, or sleeps and tries again, as long as the policy allows. */
  async #afterFailure<T>(op: GuardedOperation<T>, scope: CallScope | undefined, firstError: unknown): Promise<T> {
    const { retries, retryBaseMs, retryMaxMs } = this.#options;
    const deadline = scope?.deadline ?? Infinity;
    let error = firstError;
    let sleep = retryBaseMs;
    for (let attempt = 0; ; attempt++) {
      if (error instanceof CancelledError) throw this.#fail(op, "call cancelled", error.cause);
      if (isBreakerRejection(error)) {
        this.#stats.shortCircuited++;
        throw this.#fail(op, error.code === "ESHUTDOWN" ? "tier closed" : "circuit breaker open", error);
      }
      if (error instanceof AttemptTimeoutError) this.#stats.timeouts++;
      if (!op.idempotent || attempt >= retries || !isTransient(error)) throw this.#fail(op, describe(error), error);
      sleep = Math.min(retryMaxMs, retryBaseMs + this.#random() * (sleep * 3 - retryBaseMs));
      if (Date.now() + sleep >= deadline) throw this.#fail(op, describe(error), error);
      await abortableSleep(sleep, scope?.signal).catch((reason: unknown) => {
        throw this.#fail(op, "call cancelled", reason);
      });
      this.#stats.retries++;
      const next = this.#attemptNow(op, scope); // a cancelled call or a passed deadline ends the loop here
      try {
        return await next;
      } catch (err) {
        error = err;
      }
    }
  }

  /**
   * One attempt through the breaker, bounded there by `commandTimeoutMs`; the
   * wait for it ends sooner when the call ends early or its deadline (`left`
   * ms away) comes first. Its AttemptEnd ends with the wait.
   */
  #attempt<T>(op: GuardedOperation<T>, left: number, scope: CallScope | undefined): Promise<T> {
    const { commandTimeoutMs } = this.#options;
    const end = new AttemptEnd();
    try {
      const fired = this.#breaker.fire(() => withTimeout(op, end, commandTimeoutMs), this.#window.epoch) as Promise<T>;
      const waited = raceCancel(fired, scope, (reason) => (end.end(), new CancelledError("cancelled", { cause: reason })));
      return left < commandTimeoutMs ? raceDeadline(waited, left, () => (end.end(), new AttemptTimeoutError(Math.round(left)))) : waited;
    } catch (err) {
      end.end();
      return Promise.reject(err);
    }
  }

  #fail(op: GuardedOperation<unknown>, reason: string, cause?: unknown): TierUnavailableError {
    this.#stats.failures++;
    this.#options.logger.debug("redis call failed", { op: op.name, reason });
    return new TierUnavailableError(`redis ${op.name} failed: ${reason}`, { cause });
  }

  #setState(state: BreakerState): void {
    if (state === this.#state) return;
    this.#state = state;
    try {
      this.#options.onBreakerStateChange?.(state);
    } catch (err) {
      this.#options.logger.error("onBreakerStateChange threw", { error: String(err) });
    }
  }
}

/** The signal aborted while an attempt was in flight. */
class CancelledError extends Error {
  override readonly name = "CancelledError";
}

/**
 * Runs one attempt of `op`, rejecting with an AttemptTimeoutError after `ms`;
 * the late outcome is ignored, never unhandled. `end` ends at the timeout or
 * when the attempt settles, whichever comes first.
 */
function withTimeout<T>(op: GuardedOperation<T>, end: AttemptEnd, ms: number): Promise<T> {
  let running: Promise<T>;
  try {
    running = Promise.resolve(op.run(end));
  } catch (err) {
    end.end();
    return Promise.reject(err);
  }
  return raceDeadline(running, ms, () => (end.end(), new AttemptTimeoutError(Math.round(ms))), () => end.end());
}

/**
 * Settles like `promise`, or rejects with `toError()` after `ms` if it has not
 * settled by then (its own outcome is then ignored); `onSettled` runs when
 * `promise` settles first.
 */
function raceDeadline<T>(promise: Promise<T>, ms: number, toError: () => unknown, onSettled?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(toError()), ms);
    promise.then(
      (value) => (onSettled?.(), clearTimeout(timer), resolve(value)),
      (err: unknown) => (onSettled?.(), clearTimeout(timer), reject(err)),
    );
  });
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => (clearTimeout(timer), reject(signal!.reason));
    const timer = setTimeout(() => (signal?.removeEventListener("abort", onAbort), resolve()), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function isBreakerRejection(err: unknown): err is Error & { code: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "EOPENBREAKER" || code === "ESHUTDOWN";
}

/** The first word of a Redis reply error ("WRONGTYPE", "LOADING"…), or undefined for other errors. */
export function replyCode(err: unknown): string | undefined {
  if (!(err instanceof Error) || err.name !== "ReplyError") return undefined;
  return /^[A-Z]+/.exec(err.message)?.[0] ?? "ERR";
}

/** Whether another attempt may succeed: timeouts, connection failures and "busy right now" replies. */
function isTransient(err: unknown): boolean {
  const code = replyCode(err);
  return code === undefined || TRANSIENT_REPLIES.has(code);
}

/** Whether the breaker should count `err` as Redis being unavailable. */
function countsAgainstBreaker(err: unknown): boolean {
  return isTransient(err);
}

/** A short, secret-free reason for an error message. */
function describe(err: unknown): string {
  if (err instanceof AttemptTimeoutError) return err.message;
  const reply = replyCode(err);
  if (reply !== undefined) return `redis replied ${reply}`;
  if (!(err instanceof Error)) return "unknown error";
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && /^E[A-Z_]+$/.test(code)) return code; // ECONNREFUSED, ECONNRESET…
  const message = err.message;
  if (err.name === "MaxRetriesPerRequestError" || err.name === "AbortError" || message.startsWith("Connection is closed")) return "connection lost";
  if (message.startsWith("Stream isn't writeable")) return "not connected";
  if (message.startsWith("Cluster isn't ready")) return "cluster not ready";
  if (err.name === "ClusterAllFailedError" || message.startsWith("None of startup nodes")) return "no cluster node reachable";
  return err.name === "Error" ? "command failed" : err.name;
}
