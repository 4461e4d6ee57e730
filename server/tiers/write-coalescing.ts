import { Cluster } from "ioredis";
import type { RedisClient } from "./redis-connection.js";

/** What this module uses of a connection's socket. */
interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * Decides how the commands of one attempt of a tier operation reach Redis:
 * written at once when the tier is nearly idle; otherwise in one socket write
 * shared with the other operations of the same turn of the event loop.
 *
 * "Nearly idle" is: no command of this connection waits in an auto-pipeline,
 * and either no other operation is in flight, or one is and no operation
 * was written at once yet in this turn of the event loop. A `wrap` miss is
 * the case for the second: its read and lease arrive while the previous
 * key's write is still in flight. A burst of calls arriving together is
 * not: its first operation is written at once, the rest share one write.
 *
 * Sharing a write: on a connection with one socket (standalone, Sentinel),
 * the socket is corked until `setImmediate`, so every command written in
 * this turn leaves in one `writev`, in the order written. ioredis's own
 * auto-pipelining did that job before and cost more: it wraps each batch in
 * a Pipeline, answers each command through `nextTick`, and keeps a batch
 * waiting until the replies of the previous one are all back, so under load
 * a call waited for two Redis round trips (bench/README.md, issue 13). A
 * Cluster spreads commands over a socket per node and keeps ioredis's
 * auto-pipelining; there a command written at once goes after everything
 * already written, and none waits in an auto-pipeline that it could
 * overtake. The order of concurrent operations is not a promise the engine
 * relies on, and it has two exceptions: on a Cluster, a MULTI is written at
 * once, ahead of auto-pipelined commands issued before it; and a Lua script
 * that Redis no longer knows (after SCRIPT FLUSH or a restart) is sent again
 * by ioredis after its NOSCRIPT reply, behind commands issued after it.
 *
 * Operations count from the start of an attempt until its commands settle
 * (not until a timeout gives up on them). Only the commands an attempt
 * issues synchronously are placed by this class; those it issues after an
 * `await` go out as any other write does: at once, or in the turn's shared
 * write while the socket is corked (one socket), or auto-pipelined (Cluster).
 *
 * A turn ends at the first `setImmediate` this class queued in it: for the
 * turn's first direct operation or its first cork, whichever came first.
 * An operation issued from a `setImmediate` callback that runs after that
 * (queued in between by other code) starts the next turn and its own write.
 */
export class WriteCoalescing {
  readonly #client: RedisClient;
  #inFlight = 0;
  /** An operation was written at once in this turn of the event loop. */
  #directThisTurn = false;
  /** The socket corked in this turn. */
  #corked: Corkable | undefined;
  /** {@link #endTurn} is due at setImmediate. */
  #turnEnding = false;
  /** Forgets this turn's direct operation and uncorks its socket, once per turn in which either happened. */
  readonly #endTurn = (): void => {
    this.#turnEnding = false;
    this.#directThisTurn = false;
    const socket = this.#corked;
    this.#corked = undefined;
    socket?.uncork();
  };

  constructor(client: RedisClient) {
    this.#client = client;
  }

  /** Runs one attempt of an operation, counted as in flight until it settles; its commands written as the class comment says. */
  run<T>(attempt: () => Promise<T>): Promise<T> {
    const alone = (this.#inFlight === 0 || (this.#inFlight === 1 && !this.#directThisTurn)) && this.#client.autoPipelineQueueSize === 0;
    this.#inFlight++;
    if (alone && !this.#directThisTurn) {
      this.#directThisTurn = true;
      this.#endTurnSoon();
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
      running = alone || this.#corkSocket() ? this.#direct(attempt) : attempt();
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

  /** Corks the connection's socket until the turn ends (see the class comment); false on a Cluster, which has no one socket. */
  #corkSocket(): boolean {
    if (this.#client instanceof Cluster) return false;
    if (this.#corked) return true;
    const socket: Corkable | undefined = this.#client.stream;
    if (!socket) return true;
    socket.cork();
    this.#corked = socket;
    this.#endTurnSoon();
    return true;
  }

  #endTurnSoon(): void {
    if (this.#turnEnding) return;
    this.#turnEnding = true;
    setImmediate(this.#endTurn);
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
