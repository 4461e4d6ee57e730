/** An async iterable written to as it goes (e.g. the requests of a stream): yields what is pushed, in order, until `end()`. */
export class PushQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  /** Adds items to yield; ignored once ended. */
  push(...items: T[]): void {
    if (this.#ended) return;
    this.#items.push(...items);
    this.#notify();
  }

  /** Ends the iterable once the items pushed so far are yielded. */
  end(): void {
    this.#ended = true;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.#items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
}
