/**
 * The end of one attempt of a guarded Redis operation (see RedisGuard). The
 * guard ends it when the attempt settles, times out or is cancelled; from
 * then on no command the attempt issued may be written to Redis (see
 * late-commands.ts), whatever ioredis retries, redirects or resends.
 */
export class AttemptEnd {
  #ended = false;

  /** Whether the attempt is over. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Marks the attempt over; idempotent. */
  end(): void {
    this.#ended = true;
  }
}
