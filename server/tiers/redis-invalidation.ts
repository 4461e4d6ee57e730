import { Cluster } from "ioredis";
import { randomUUID } from "node:crypto";
import type { Change } from "../engine/invalidation-bus.js";
import type { Logger } from "../logger.js";
import { isFrom, parseMessage } from "./invalidation-protocol.js";
import { InvalidationPublisher, type PublisherStats, type Reservation } from "./invalidation-publisher.js";
import { InvalidationReceiver } from "./invalidation-receiver.js";
import type { RedisClient } from "./redis-connection.js";

/** What a server instance does with changes other instances made. */
export interface RemoteChangeHandler {
  /** Another instance changed these keys (or cleared a namespace). */
  apply(change: Change): void;
  /**
   * Messages may have been missed (a gap, a silent instance, a broken or
   * silent subscription): forget every memory copy and reset every watcher.
   */
  resync(): void;
}

/** What a caller of `RedisTier.invalidations` may choose. */
export interface InvalidationSettings {
  /** A client to subscribe with instead of a duplicate of the tier's connection (not yet connected: the channel connects it). */
  subscriber?: RedisClient;
  /** Heartbeat interval of the channel, in ms. @default 1000 */
  heartbeatMs?: number;
}

/** Options of a {@link RedisInvalidationChannel}. */
export interface InvalidationChannelOptions {
  /** The channel is `${keyPrefix}:invalidations`. */
  readonly keyPrefix: string;
  readonly logger: Logger;
  readonly handler: RemoteChangeHandler;
  /** Every instance sends something at least this often, in ms; silence for two of them is a gap. @default 1000 */
  readonly heartbeatMs?: number;
  /** Time limit of one publish, in ms. */
  readonly attemptTimeoutMs: number;
  /** This instance's longest write, in ms (see ChannelMessage.settle). */
  readonly settleMs: number;
  /** How long `start` waits for the channel to carry this instance's first message, in ms. */
  readonly startTimeoutMs: number;
  /** Most changes waiting to be published (see InvalidationPublisher). @default 10000 */
  readonly maxQueuedChanges?: number;
}

/** Counters and state of a {@link RedisInvalidationChannel}. */
export interface InvalidationChannelStats extends PublisherStats {
  /** Times the memory tier was flushed because messages may have been missed. */
  flushes: number;
  /** Other instances heard recently. */
  peers: number;
  /** The subscription is heard (some message arrived within two heartbeats). */
  inTouch: boolean;
  /** Changes made here can be announced (a publish was accepted within two heartbeats). */
  canAnnounce: boolean;
}

/** A change to publish from the script that writes it (see {@link RedisInvalidationChannel.announceWithWrite}). */
export interface WriteAnnouncement {
  readonly channel: string;
  readonly text: string;
  /**
   * Once: whether Redis ran the script (false when unknown: the message is
   * then sent on its own); `retried` when the write was sent more than once,
   * so that its message may have preceded the attempt that took effect: the
   * change is then announced again after the write.
   */
  settle(published: boolean, retried: boolean): void;
}

/** A change as the other instances are told it: its own copy of the keys, without the local writer's origin. */
function forPeers(change: Change): Change {
  return { kind: change.kind, namespace: change.namespace, keys: [...change.keys] };
}

/** A change announced by its own write: its reservation, and whether that write was retried. */
interface Announced {
  readonly reservation: Reservation;
  retried: boolean;
}

/**
 * The invalidation channel between server instances over one Redis: the
 * pub/sub channel `<prefix>:invalidations` (cluster-wide in Redis Cluster),
 * carrying numbered changes and heartbeats (invalidation-protocol.ts).
 *
 * - Publishing ({@link InvalidationPublisher}) goes in order through the
 *   tier's own data connection but outside its breaker, with its own bounded
 *   queue and retries, and resumes at once when that connection comes back.
 * - Receiving ({@link InvalidationReceiver}) runs on a connection of its own;
 *   gaps, silent instances and a silent subscription flush the memory tier
 *   (`handler.resync()`), as does a subscription that broke and came back.
 * - A subscription that stays silent while this instance's publishes are
 *   accepted is broken in a way Redis did not report: it is reconnected.
 * - {@link canAnnounce} is false while this instance's messages are not
 *   being accepted: the server then refuses changes (write-fence.ts), since
 *   the other instances could not hear of them.
 */
export class RedisInvalidationChannel {
  /** This instance's sender id. */
  readonly id = randomUUID();
  readonly #channel: string;
  readonly #subscriber: RedisClient;
  readonly #logger: Logger;
  readonly #handler: RemoteChangeHandler;
  readonly #heartbeatMs: number;
  readonly #startTimeoutMs: number;
  readonly #publisher: InvalidationPublisher;
  readonly #receiver: InvalidationReceiver;
  readonly #timers: NodeJS.Timeout[] = [];
  #subscribed = false;
  #broken = false;
  #closed = false;
  #flushes = 0;
  #lastReason: string | undefined;
  #lastReconnect: number;
  #echoed: (() => void) | undefined;
  /** Changes announced by their own write, and their reservations (see {@link announceWithWrite}). */
  readonly #announced = new WeakMap<Change, Announced>();

  constructor(subscriber: RedisClient, send: (channel: string, message: string) => Promise<unknown>, options: InvalidationChannelOptions) {
    this.#channel = `${options.keyPrefix}:invalidations`;
    this.#subscriber = subscriber;
    // This channel subscribes again itself on every "ready" (and handles failures); ioredis's own
    // re-subscription is a promise nobody awaits, and a second drop rejects it unhandled, ending the process.
    if (subscriber instanceof Cluster) subscriber.options.redisOptions = { ...subscriber.options.redisOptions, autoResubscribe: false };
    else subscriber.options.autoResubscribe = false;
    this.#logger = options.logger;
    this.#handler = options.handler;
    this.#heartbeatMs = options.heartbeatMs ?? 1_000;
    this.#startTimeoutMs = options.startTimeoutMs;
    this.#lastReconnect = performance.now();
    this.#publisher = new InvalidationPublisher({
      senderId: this.id,
      heartbeatMs: this.#heartbeatMs,
      settleMs: options.settleMs,
      attemptTimeoutMs: options.attemptTimeoutMs,
      send: (message) => send(this.#channel, message),
      logger: options.logger,
      ...(options.maxQueuedChanges !== undefined && { maxQueuedChanges: options.maxQueuedChanges }),
    });
    this.#receiver = new InvalidationReceiver({ selfId: this.id, heartbeatMs: this.#heartbeatMs }, performance.now());
    subscriber.on("message", (channel: string, text: string) => {
      if (channel === this.#channel) this.#onMessage(text);
    });
    subscriber.on("error", () => {});
    subscriber.on("close", () => {
      if (!this.#subscribed) return;
      this.#subscribed = false;
      this.#broken = true;
      this.#logger.warn("invalidation subscription lost; memory-tier copies are dropped when it returns");
    });
    subscriber.on("ready", () => void this.#subscribe());
  }

  #onMessage(text: string): void {
    const echo = isFrom(text, this.id);
    const message = echo ? undefined : parseMessage(text);
    if (!echo && !message) {
      this.#logger.debug("ignoring a malformed invalidation message");
      return;
    }
    const now = performance.now();
    const verdict = message ? this.#receiver.receive(message, now) : this.#receiver.receiveEcho(now);
    if (verdict.flush !== undefined) this.#flush(verdict.flush);
    for (const change of verdict.changes) this.#handler.apply(change);
    if (echo) this.#echoed?.();
  }

  #flush(reason: string): void {
    this.#flushes++;
    this.#receiver.flushed(performance.now());
    if (reason !== this.#lastReason) this.#logger.warn("dropping memory-tier copies: invalidations may have been missed", { reason });
    else this.#logger.debug("dropping memory-tier copies again", { reason });
    this.#lastReason = reason;
    this.#handler.resync();
  }

  async #subscribe(): Promise<void> {
    try {
      await this.#subscriber.subscribe(this.#channel);
      this.#subscribed = true;
      if (this.#broken) {
        this.#broken = false;
        this.#flush("the subscription was re-established");
      }
    } catch (err) {
      this.#logger.warn("cannot subscribe to invalidations", { error: (err as Error).message });
    }
  }

  #check(): void {
    const now = performance.now();
    const reason = this.#receiver.check(now);
    if (reason !== undefined) this.#flush(reason);
    else if (this.#lastReason !== undefined && this.#receiver.inTouch(now)) this.#lastReason = undefined;
    // Our messages are accepted but do not come back: the subscription is broken without Redis saying so.
    const bound = this.#receiver.silenceBoundMs;
    const accepted = this.#publisher.lastAcceptedAt;
    const echo = this.#receiver.lastEcho ?? -Infinity;
    if (accepted !== undefined && now - accepted <= bound && now - echo > bound && now - this.#lastReconnect > bound && this.#subscriber.status === "ready") {
      this.#lastReconnect = now;
      this.#logger.warn("invalidation subscription silent while publishing works; reconnecting it");
      this.#subscriber.disconnect(true);
    }
  }

  /**
   * Starts the subscription, the heartbeats and the checks; resolves once this
   * instance's first message came back, or after `startTimeoutMs` (until
   * then changes are refused: see {@link canAnnounce}).
   */
  async start(): Promise<void> {
    // Checked every tenth of a heartbeat: silence is noticed within 2.1 heartbeats of the last message.
    const checkEvery = Math.max(10, this.#heartbeatMs / 10);
    this.#timers.push(setInterval(() => this.#publisher.heartbeat(), this.#heartbeatMs), setInterval(() => this.#check(), checkEvery));
    for (const timer of this.#timers) timer.unref();
    const echoed = new Promise<void>((resolve) => (this.#echoed = resolve));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#startTimeoutMs)));
    if (this.#subscriber.status === "ready") await this.#subscribe();
    // Bounded: with every Sentinel unreachable, ioredis's connect() does not settle until one answers.
    else await Promise.race([this.#subscriber.connect().catch(() => {}), timeout]);
    this.#publisher.heartbeat();
    // Redis unreachable: do not hold the start-up; changes stay refused until it answers.
    if (this.#subscriber.status === "ready") await Promise.race([echoed, timeout]);
    clearTimeout(timer);
    this.#echoed = undefined;
  }

  /** The data connection is back: publish what waits now. */
  connectionBack(): void {
    this.#publisher.kick();
    this.#publisher.heartbeat();
  }

  /** True while the subscription is heard (some message arrived within two heartbeats). */
  get connected(): boolean {
    return this.#subscribed && this.#receiver.inTouch(performance.now());
  }

  /**
   * True while this instance's messages are accepted by Redis (one was within
   * two heartbeats): changes made here then reach the other instances, or
   * they notice that they did not.
   */
  get canAnnounce(): boolean {
    const accepted = this.#publisher.lastAcceptedAt;
    return !this.#closed && accepted !== undefined && performance.now() - accepted <= this.#receiver.silenceBoundMs;
  }

  /** A snapshot of the counters and state. */
  stats(): InvalidationChannelStats {
    return { ...this.#publisher.stats(), flushes: this.#flushes, peers: this.#receiver.peers, inTouch: this.connected, canAnnounce: this.canAnnounce };
  }

  /**
   * Numbers `change` for its writer to publish in the script that makes it:
   * `PUBLISH channel text` there, then `settle(true)` once Redis ran the
   * script, or `settle(false)` when that is not known. Undefined while other
   * messages wait or are being sent (then the change goes the usual way).
   * {@link publish} skips this very change object afterwards, unless its
   * message may have preceded the write (sent at the time limit, or the
   * write was retried): then it is announced again.
   */
  announceWithWrite(change: Change): WriteAnnouncement | undefined {
    if (this.#closed) return undefined;
    const reservation = this.#publisher.reserve(forPeers(change));
    if (!reservation) return undefined;
    const announced: Announced = { reservation, retried: false };
    this.#announced.set(change, announced);
    return {
      channel: this.#channel,
      text: reservation.text,
      settle: (published, retried) => {
        announced.retried = retried;
        reservation.settle(published);
      },
    };
  }

  /** Tells the other instances about a change made here (unless its write announced it). Never throws. */
  publish(change: Change): void {
    const announced = this.#announced.get(change);
    if (announced !== undefined) {
      this.#announced.delete(change);
      if (!announced.retried && !announced.reservation.sentEarly) return;
    }
    this.#publisher.enqueue(forPeers(change));
  }

  /** Publishes what waits (for at most `timeoutMs`, and 2 heartbeats), says goodbye, and closes the subscription. */
  async close(timeoutMs = 1_000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#publisher.close(Math.min(2 * this.#heartbeatMs, timeoutMs)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    this.disconnect();
  }

  /** Closes the subscription at once, whatever waits to be published. */
  disconnect(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#subscribed = false;
    this.#subscriber.removeAllListeners("close");
    this.#subscriber.disconnect();
  }
}
