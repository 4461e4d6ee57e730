import type { MessageInitShape } from "@bufbuild/protobuf";
import type { WatchResponseSchema } from "../../gen/tiercache/v1/cache_pb.js";
import { Fifo } from "../engine/fifo.js";

/** One message of a Watch stream, as the handler yields it. */
export type WatchMessage = MessageInitShape<typeof WatchResponseSchema>;

/** Limits and hooks of a {@link WatchQueue}. */
export interface WatchQueueOptions {
  /** Messages waiting for the reader before its backlog is dropped. */
  maxMessages: number;
  /** Keys in the waiting messages before the backlog is dropped. */
  maxKeys: number;
  /**
   * The RESET and READY that replace a namespace's dropped backlog; called
   * when they are about to be sent, so they carry that moment's sequence number.
   */
  resetOf: (namespace: string) => readonly [WatchMessage, WatchMessage];
}

/**
 * The messages waiting for one Watch stream's reader, in O(1) per message
 * whatever the number of namespaces the stream watches.
 *
 * When a slow reader lets more than `maxMessages` messages (or `maxKeys`
 * keys) pile up, the whole backlog is dropped in one pass (paid for by the
 * pushes that filled it) and every namespace that had something in it is owed
 * a RESET + READY instead. Owed resets are sent first, in the order they were
 * incurred; until a namespace's RESET has gone out, its new events are dropped
 * too (the RESET covers them), so the queue never refills with what a reset
 * replaces.
 */
export class WatchQueue {
  readonly #options: WatchQueueOptions;
  readonly #messages = new Fifo<WatchMessage>();
  #keys = 0;
  /** Namespaces owed a RESET + READY: membership, and the order to send them in. */
  readonly #owed = new Set<string>();
  readonly #owedOrder = new Fifo<string>();
  #readyAfterReset: WatchMessage | undefined;
  #overflows = 0;

  constructor(options: WatchQueueOptions) {
    this.#options = options;
  }

  /** True when nothing waits to be sent. */
  get empty(): boolean {
    return this.#readyAfterReset === undefined && this.#owedOrder.length === 0 && this.#messages.length === 0;
  }

  /** How many times a backlog was dropped for RESETs. */
  get overflows(): number {
    return this.#overflows;
  }

  /** Queues a message of a namespace (every queued message names one). */
  push(message: WatchMessage): void {
    const namespace = message.namespace ?? "";
    if (this.#owed.has(namespace)) return;
    this.#messages.push(message);
    this.#keys += message.keys?.length ?? 0;
    if (this.#messages.length > this.#options.maxMessages || this.#keys > this.#options.maxKeys) this.#dropBacklog();
  }

  /** The next message to send, or undefined when none waits. */
  shift(): WatchMessage | undefined {
    const ready = this.#readyAfterReset;
    if (ready) {
      this.#readyAfterReset = undefined;
      return ready;
    }
    const namespace = this.#owedOrder.shift();
    if (namespace !== undefined) {
      this.#owed.delete(namespace);
      const [reset, readyAgain] = this.#options.resetOf(namespace);
      this.#readyAfterReset = readyAgain;
      return reset;
    }
    const message = this.#messages.shift();
    if (message) this.#keys -= message.keys?.length ?? 0;
    return message;
  }

  #dropBacklog(): void {
    this.#overflows++;
    for (const message of this.#messages) {
      const namespace = message.namespace ?? "";
      if (this.#owed.has(namespace)) continue;
      this.#owed.add(namespace);
      this.#owedOrder.push(namespace);
    }
    this.#messages.clear();
    this.#keys = 0;
  }
}
