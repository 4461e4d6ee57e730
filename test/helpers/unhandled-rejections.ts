/**
 * Collects the unhandled promise rejections of this process while installed:
 * with Node's default (--unhandled-rejections=throw) a server process would
 * crash on one, so a run during which one happened has failed, whatever it
 * returned.
 */
export class UnhandledRejections {
  readonly #reasons: unknown[] = [];
  readonly #listener = (reason: unknown) => void this.#reasons.push(reason);

  /** Starts collecting. */
  install(): this {
    process.on("unhandledRejection", this.#listener);
    return this;
  }

  /** Stops collecting. */
  uninstall(): void {
    process.off("unhandledRejection", this.#listener);
  }

  /** How many were collected so far. */
  get count(): number {
    return this.#reasons.length;
  }

  /** Throws when any was collected after the first `seen`, naming the first of them. */
  assertNoneSince(seen: number): void {
    const first = this.#reasons[seen];
    if (this.#reasons.length === seen) return;
    const reason = first instanceof Error ? `${first.name}: ${first.message}` : String(first);
    throw new Error(`${this.#reasons.length - seen} unhandled promise rejection(s) during the run (a server process would crash on one): ${reason}`, { cause: first });
  }
}
