import type { Change } from "../engine/invalidation-bus.js";
import type { Logger } from "../logger.js";
import { encodeMessage, type ChannelMessage } from "./invalidation-protocol.js";

/** Options of an {@link InvalidationPublisher}. */
export interface InvalidationPublisherOptions {
  /** This sender's id on the channel. */
  readonly senderId: string;
  /** A heartbeat goes out when nothing else did for this long, in ms. */
  readonly heartbeatMs: number;
  /** Announced in every message (see {@link ChannelMessage.settle}). */
  readonly settleMs: number;
  /** Sends one message; resolves once Redis accepted it. */
  readonly send: (text: string) => Promise<unknown>;
  /** Time limit of one send, in ms; a send past it counts as failed (it may still arrive: receivers ignore repeats). */
  readonly attemptTimeoutMs: number;
  /** Most changes waiting at once; one more drops the queue. @default 10000 */
  readonly maxQueuedChanges?: number;
  /** Most keys waiting at once (summed over the changes); past it the queue is dropped. @default 100000 */
  readonly maxQueuedKeys?: number;
  /** Longest a change may wait, in ms; past it the queue is dropped. @default heartbeatMs */
  readonly maxQueueAgeMs?: number;
  /** Most keys in one message (a larger single change goes alone). @default 1000 */
  readonly maxMessageKeys?: number;
  /** First pause after a failed send, in ms; doubles up to `retryMaxMs`. @default 50 */
  readonly retryBaseMs?: number;
  /** Longest pause between sends, in ms. @default 1000 */
  readonly retryMaxMs?: number;
  readonly logger: Logger;
  /** A monotonic clock, in ms (durations only: immune to wall-clock steps). @default performance.now */
  readonly now?: () => number;
}

/** Counters of an {@link InvalidationPublisher} since creation. */
export interface PublisherStats {
  /** Messages Redis accepted (changes and heartbeats). */
  accepted: number;
  /** Sends that failed or timed out (each is retried). */
  failedSends: number;
  /** Changes dropped unsent (a full or too old queue); receivers see the jump in numbers and flush. */
  dropped: number;
  /** Changes waiting now. */
  queued: number;
}

interface Queued {
  readonly seq: number;
  readonly change: Change;
  readonly at: number;
}

/**
 * A change numbered for its writer to publish with the write itself (see
 * {@link InvalidationPublisher.reserve}). `settle` must be called once:
 * `true` when Redis ran the command that published `text`, `false` when
 * that is not known (the publisher then sends the message itself).
 */
export interface Reservation {
  readonly text: string;
  settle(published: boolean): void;
  /**
   * True once the time limit passed before it settled: the message was then
   * sent here, possibly ahead of a retry of the write that the guard had not
   * sent yet, so the change must be announced again after the write ends.
   */
  readonly sentEarly: boolean;
}

/**
 * The sending half of the invalidation channel: numbers every change, keeps
 * a bounded queue, and publishes in order, one message at a time, outside
 * the data breaker: a failed or timed-out send is retried (jittered backoff,
 * or at once when {@link kick}ed because the connection came back) until it
 * is accepted. Sending in order on the tier's own connection means a change
 * is published after the write it announces reached Redis, even when that
 * write timed out on a stalled connection and is applied later.
 *
 * Nothing is dropped silently: when the queue is full, or its oldest change
 * waited longer than `maxQueueAgeMs`, every waiting change is dropped and
 * counted; their numbers are spent, so the next message (at the latest a
 * heartbeat) shows the jump and every receiver flushes.
 */
export class InvalidationPublisher {
  readonly #options: Required<Omit<InvalidationPublisherOptions, "logger" | "send" | "now">>;
  readonly #send: (text: string) => Promise<unknown>;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #queue: Queued[] = [];
  readonly #stats: PublisherStats = { accepted: 0, failedSends: 0, dropped: 0, queued: 0 };
  #seq = 0;
  #queuedKeys = 0;
  #heartbeatDue = false;
  #running: Promise<void> | undefined;
  #stopped = false;
  #wake: (() => void) | undefined;
  #kicked = false;
  #lastAccepted: number | undefined;
  #failing = false;
  /** A change its writer publishes is reserved: nothing is sent until it settles. */
  #reserved = false;

  constructor(options: InvalidationPublisherOptions) {
    this.#send = options.send;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => performance.now());
    this.#options = {
      senderId: options.senderId,
      heartbeatMs: options.heartbeatMs,
      settleMs: options.settleMs,
      attemptTimeoutMs: options.attemptTimeoutMs,
      maxQueuedChanges: options.maxQueuedChanges ?? 10_000,
      maxQueuedKeys: options.maxQueuedKeys ?? 100_000,
      maxQueueAgeMs: options.maxQueueAgeMs ?? options.heartbeatMs,
      maxMessageKeys: options.maxMessageKeys ?? 1_000,
      retryBaseMs: options.retryBaseMs ?? 50,
      retryMaxMs: options.retryMaxMs ?? 1_000,
    };
  }

  /** The last number given to a change. */
  get lastSeq(): number {
    return this.#seq;
  }

  /** When Redis last accepted a message from this sender (undefined: never). */
  get lastAcceptedAt(): number | undefined {
    return this.#lastAccepted;
  }

  /** A snapshot of the counters. */
  stats(): PublisherStats {
    return { ...this.#stats, queued: this.#queue.length };
  }

  /** Numbers `change` and queues it for publishing. */
  enqueue(change: Change): void {
    const seq = ++this.#seq;
    if (this.#stopped) return;
    const { maxQueuedChanges, maxQueuedKeys } = this.#options;
    if (this.#queue.length >= maxQueuedChanges || this.#queuedKeys + change.keys.length > maxQueuedKeys) this.#dropQueue("queue full");
    this.#queue.push({ seq, change, at: this.#now() });
    this.#queuedKeys += change.keys.length;
    this.#run();
  }

  /**
   * Numbers `change` for the caller to publish in the same Redis command as
   * the write it announces (one command less per write), when nothing else
   * waits or is being sent; undefined otherwise (then {@link enqueue} it).
   * Until the reservation settles, nothing else is sent, so the numbers still
   * reach Redis in order; if it settles unpublished, or has not settled
   * within `attemptTimeoutMs` (then see {@link Reservation.sentEarly}), the
   * message goes out here, first (a receiver that gets it twice ignores the
   * repeat).
   */
  reserve(change: Change): Reservation | undefined {
    if (this.#stopped || this.#running || this.#reserved || this.#failing || this.#queue.length > 0) return undefined;
    const seq = ++this.#seq;
    this.#reserved = true;
    let settled = false;
    const settle = (published: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(expiry);
      this.#reserved = false;
      if (published) this.#accepted(seq);
      else if (!this.#stopped) {
        // Queued from now, as a change is once its write ends: the write's own time does not count against the queue's age limit.
        this.#queue.unshift({ seq, change, at: this.#now() });
        this.#queuedKeys += change.keys.length;
      }
      if (this.#queue.length > 0 || this.#heartbeatDue) this.#run();
    };
    // Held no longer than one send may take: a write stuck on one Redis node must not silence this sender.
    let sentEarly = false;
    const expiry = setTimeout(() => {
      sentEarly = true;
      settle(false);
    }, this.#options.attemptTimeoutMs);
    expiry.unref?.();
    return {
      text: encodeMessage(this.#message([change], false, seq)),
      settle,
      get sentEarly() {
        return sentEarly;
      },
    };
  }

  /** Sends a heartbeat, unless a send is under way or waiting (its arrival says as much). */
  heartbeat(): void {
    if (this.#stopped || this.#running || this.#reserved) return;
    this.#heartbeatDue = true;
    this.#run();
  }

  /** Ends a pause between retries now (the connection is back). */
  kick(): void {
    this.#kicked = true;
    this.#wake?.();
  }

  /**
   * Waits up to `timeoutMs` for the queue to empty, then sends a last message
   * saying this sender stops (receivers forget it without flushing), and stops.
   */
  async close(timeoutMs: number): Promise<void> {
    const end = this.#now() + timeoutMs;
    while ((this.#queue.length > 0 || this.#running || this.#reserved) && this.#now() < end) {
      this.kick();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    this.#stopped = true;
    this.kick();
    if (this.#queue.length === 0) await this.#attempt(this.#message([], true));
  }

  #dropQueue(reason: string): void {
    if (this.#queue.length === 0) return;
    this.#logger.warn("invalidation queue dropped: other instances will flush their memory tiers", { reason, changes: this.#queue.length });
    this.#stats.dropped += this.#queue.length;
    this.#queue.length = 0;
    this.#queuedKeys = 0;
  }

  #message(changes: readonly Change[], bye = false, seq = this.#seq): ChannelMessage {
    const { senderId, heartbeatMs, settleMs } = this.#options;
    return { v: 1, from: senderId, seq, changes, hb: heartbeatMs, settle: settleMs, ...(bye && { bye: true as const }) };
  }

  /** The next message to send and the last number it covers, or undefined when there is nothing to send. */
  #next(): { message: ChannelMessage; upTo: number } | undefined {
    const head = this.#queue[0];
    if (head && this.#now() - head.at > this.#options.maxQueueAgeMs) this.#dropQueue("changes waited too long");
    if (this.#queue.length === 0) {
      if (!this.#heartbeatDue) return undefined;
      return { message: this.#message([]), upTo: this.#seq };
    }
    const batch: Queued[] = [];
    let keys = 0;
    for (const item of this.#queue) {
      if (batch.length > 0 && keys + item.change.keys.length > this.#options.maxMessageKeys) break;
      batch.push(item);
      keys += item.change.keys.length;
    }
    const upTo = batch[batch.length - 1]!.seq;
    return { message: this.#message(batch.map((item) => item.change), false, upTo), upTo };
  }

  #accepted(upTo: number): void {
    this.#stats.accepted++;
    this.#lastAccepted = this.#now();
    this.#heartbeatDue = false;
    let n = 0;
    while (n < this.#queue.length && this.#queue[n]!.seq <= upTo) this.#queuedKeys -= this.#queue[n++]!.change.keys.length;
    this.#queue.splice(0, n);
    if (this.#failing) {
      this.#failing = false;
      this.#logger.info("invalidations are published again");
    }
  }

  #run(): void {
    if (this.#reserved) return;
    this.#running ??= this.#loop().finally(() => (this.#running = undefined));
  }

  async #loop(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      const next = this.#next();
      if (!next) return;
      if (await this.#attempt(next.message)) {
        this.#accepted(next.upTo);
        failures = 0;
        continue;
      }
      failures++;
      this.#stats.failedSends++;
      if (!this.#failing) {
        this.#failing = true;
        this.#logger.warn("cannot publish invalidations; retrying (other instances flush if it lasts)");
      }
      if (this.#kicked) {
        this.#kicked = false;
        continue;
      }
      const { retryBaseMs, retryMaxMs } = this.#options;
      const pause = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(failures - 1, 10));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, pause * (0.5 + Math.random() / 2));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#wake = done;
      });
      this.#wake = undefined;
      this.#kicked = false;
    }
  }

  /** One send, bounded by the attempt timeout; true when Redis accepted it in time. */
  #attempt(message: ChannelMessage): Promise<boolean> {
    const text = encodeMessage(message);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.#options.attemptTimeoutMs);
      new Promise((res) => res(this.#send(text))).then(
        () => (clearTimeout(timer), resolve(true)),
        () => (clearTimeout(timer), resolve(false)),
      );
    });
  }
}
