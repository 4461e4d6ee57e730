import { Command } from "ioredis";
import type { RedisClient } from "./redis-connection.js";

/**
 * Sends a lone command straight to the connection when no other operation of
 * the tier is in flight, and through ioredis's auto-pipelining otherwise.
 *
 * Auto-pipelining gathers the commands issued in one turn of the event loop
 * into one write, which pays under load; but it also defers a lone command to
 * `setImmediate` and wraps it in a one-command pipeline, which costs a
 * sequential GET about 25 µs on these machines (bench/README.md, issue 13).
 *
 * Order on the connection is kept: a command goes direct only when every
 * operation started before it has settled, so nothing of ours can be waiting
 * in an auto-pipeline that the direct write would overtake. Operations count
 * from the start of an attempt until its commands settle (not until a timeout
 * gives up on them).
 */
export class IdleBypass {
  #inFlight = 0;

  /** Runs one attempt of an operation, counted as in flight until it settles. */
  track<T>(run: () => Promise<T>): Promise<T> {
    this.#inFlight++;
    let settled = false;
    const done = (): void => {
      if (!settled) {
        settled = true;
        this.#inFlight--;
      }
    };
    let attempt: Promise<T>;
    try {
      attempt = run();
    } catch (err) {
      done();
      throw err;
    }
    attempt.then(done, done);
    return attempt;
  }

  /** Whether the calling attempt is the only operation in flight (call it from inside {@link track}). */
  get alone(): boolean {
    return this.#inFlight <= 1;
  }

  /** Operations in flight now. */
  get inFlight(): number {
    return this.#inFlight;
  }
}

/** Sends `name args` without auto-pipelining; replies as Buffers when `buffers` (like ioredis's `…Buffer` methods). */
export function sendDirect(client: RedisClient, name: string, args: (string | Buffer | number)[], buffers: boolean): Promise<unknown> {
  const command = new Command(name, args, { replyEncoding: buffers ? null : "utf8" });
  void client.sendCommand(command);
  return command.promise;
}
