import type { RedisClient } from "./redis-connection.js";

/**
 * Sends the commands of an operation straight to the connection when the
 * tier is nearly idle, and through ioredis's auto-pipelining otherwise.
 *
 * Auto-pipelining gathers the commands issued in one turn of the event loop
 * into one write, which pays under load; but it also defers a lone command to
 * `setImmediate` and wraps it in a one-command pipeline, which cost a
 * sequential GET about 17 µs and a lease script about 90 µs here
 * (bench/README.md, issue 13).
 *
 * "Nearly idle" is: no command of this connection waits in an auto-pipeline,
 * and either no other operation is in flight or the one in flight started
 * in an earlier turn of the event loop. A `wrap` miss is the case for the
 * second: its read and lease arrive while the previous key's write is still
 * in flight. A burst of calls arriving together is not: its first operation
 * goes direct, the rest share one auto-pipelined write.
 *
 * A direct write goes after everything already written, and no command
 * waits in an auto-pipeline that it could overtake. (ioredis writes a MULTI
 * at once, so MULTI-based operations were never ordered against pipelined
 * ones; the engine does not rely on the order of concurrent tier
 * operations.) Operations count from the start of an attempt until its
 * commands settle (not until a timeout gives up on them). Only the commands
 * an attempt issues synchronously go direct; those it issues after an
 * `await` are pipelined, behind it.
 */
export class IdleBypass {
  readonly #client: RedisClient;
  #inFlight = 0;
  /** An operation went direct in this turn of the event loop (cleared at setImmediate). */
  #directThisTurn = false;
  readonly #endTurn = (): void => {
    this.#directThisTurn = false;
  };

  constructor(client: RedisClient) {
    this.#client = client;
  }

  /** Runs one attempt of an operation, counted as in flight until it settles; direct when the tier is nearly idle. */
  run<T>(attempt: () => Promise<T>): Promise<T> {
    const alone = (this.#inFlight === 0 || (this.#inFlight === 1 && !this.#directThisTurn)) && this.#client.autoPipelineQueueSize === 0;
    this.#inFlight++;
    if (alone && !this.#directThisTurn) {
      this.#directThisTurn = true;
      setImmediate(this.#endTurn);
    }
    let settled = false;
    const done = (): void => {
      if (!settled) {
        settled = true;
        this.#inFlight--;
      }
    };
    let running: Promise<T>;
    try {
      running = alone ? this.#direct(attempt) : attempt();
    } catch (err) {
      done();
      throw err;
    }
    running.then(done, done);
    return running;
  }

  /** Operations in flight now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Runs `attempt` with auto-pipelining off for the commands it issues synchronously (ioredis reads the option per command). */
  #direct<T>(attempt: () => Promise<T>): Promise<T> {
    const options = this.#client.options;
    const pipelining = options.enableAutoPipelining;
    options.enableAutoPipelining = false;
    try {
      return attempt();
    } finally {
      options.enableAutoPipelining = pipelining;
    }
  }
}
