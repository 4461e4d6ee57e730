import { randomUUID } from "node:crypto";
import type { Change, ChangeKind } from "../engine/invalidation-bus.js";
import type { Logger } from "../logger.js";
import type { RedisClient } from "./redis-connection.js";

/** What a server instance does with changes other instances made. */
export interface RemoteChangeHandler {
  /** Another instance changed these keys (or cleared a namespace). */
  apply(change: Change): void;
  /**
   * The subscription is back after a break: messages may have been missed
   * meanwhile, so forget every local copy.
   */
  resync(): void;
}

const KINDS: readonly ChangeKind[] = ["set", "delete", "touch", "clear"];

interface Message {
  from: string;
  kind: ChangeKind;
  namespace: string;
  keys: string[];
}

function parse(text: string): Message | undefined {
  try {
    const m = JSON.parse(text) as Partial<Message>;
    if (typeof m.from !== "string" || !KINDS.includes(m.kind as ChangeKind) || typeof m.namespace !== "string" || !Array.isArray(m.keys)) return undefined;
    if (!m.keys.every((k) => typeof k === "string")) return undefined;
    return m as Message;
  } catch {
    return undefined;
  }
}

/**
 * Shares changes between server instances over one Redis pub/sub channel,
 * `<prefix>:invalidations` (cluster-wide in Redis Cluster). Each instance
 * ignores its own messages. The subscription runs on its own connection.
 * While it is broken (Redis unreachable), the memory tier keeps serving what
 * it holds, so that reads survive a Redis outage; once it is back,
 * `handler.resync()` drops every memory copy and resets every watcher, since
 * messages may have been missed. Until then an instance may serve a copy
 * that another instance (one that could still reach Redis) overwrote.
 */
export class RedisInvalidationChannel {
  readonly #id = randomUUID();
  readonly #channel: string;
  readonly #subscriber: RedisClient;
  readonly #publish: (channel: string, message: string) => Promise<unknown>;
  readonly #logger: Logger;
  readonly #handler: RemoteChangeHandler;
  #publishFailures = 0;
  #connected = false;
  #missed = false;

  constructor(
    subscriber: RedisClient,
    publish: (channel: string, message: string) => Promise<unknown>,
    options: { keyPrefix: string; logger: Logger; handler: RemoteChangeHandler },
  ) {
    this.#channel = `${options.keyPrefix}:invalidations`;
    this.#subscriber = subscriber;
    this.#publish = publish;
    this.#logger = options.logger;
    const { handler } = options;
    this.#handler = handler;
    subscriber.on("message", (channel: string, text: string) => {
      if (channel !== this.#channel) return;
      const message = parse(text);
      if (!message || message.from === this.#id) return;
      handler.apply({ kind: message.kind, namespace: message.namespace, keys: message.keys });
    });
    subscriber.on("error", () => {});
    subscriber.on("close", () => {
      if (!this.#connected) return;
      this.#connected = false;
      this.#missed = true;
      this.#logger.warn("invalidation subscription lost; memory-tier copies are dropped when it returns");
    });
    subscriber.on("ready", () => void this.#subscribe(handler));
  }

  async #subscribe(handler: RemoteChangeHandler): Promise<void> {
    try {
      await this.#subscriber.subscribe(this.#channel);
      this.#connected = true;
      if (this.#missed) {
        this.#missed = false;
        this.#logger.info("invalidation subscription back; dropping memory-tier copies");
        handler.resync();
      }
    } catch (err) {
      this.#logger.warn("cannot subscribe to invalidations", { error: (err as Error).message });
    }
  }

  /** Starts the subscription (resolves once subscribed, or when it could not be yet). */
  async start(): Promise<void> {
    if (this.#subscriber.status === "ready") await this.#subscribe(this.#handler);
    else await this.#subscriber.connect().catch(() => {});
  }

  /** True while the subscription is live. */
  get connected(): boolean {
    return this.#connected;
  }

  /** Publish failures since start (other instances may then keep a copy until its TTL). */
  get publishFailures(): number {
    return this.#publishFailures;
  }

  /** Tells the other instances about a change made here. Never throws. */
  publish(change: Change): void {
    const message: Message = { from: this.#id, kind: change.kind, namespace: change.namespace, keys: [...change.keys] };
    this.#publish(this.#channel, JSON.stringify(message)).catch((err: unknown) => {
      this.#publishFailures++;
      this.#logger.warn("cannot publish an invalidation", { error: (err as Error).message, namespace: change.namespace });
    });
  }

  async close(): Promise<void> {
    this.#connected = false;
    this.#subscriber.removeAllListeners("close");
    this.#subscriber.disconnect();
  }
}
