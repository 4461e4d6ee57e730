import type { ServiceClient } from "../core/grpc-adapter.js";
import { CacheService, WatchEventKind, type WatchResponse } from "../gen/tiercache/v1/cache_pb.js";

/** What the watcher tells the local tier. */
export interface CoherenceListener {
  /** These keys changed: drop them. */
  invalidate(namespace: string, keys: readonly string[]): void;
  /** Anything held for the namespace may be stale: drop it all. */
  flush(namespace: string): void;
}

/** Options of a {@link CoherenceWatcher}. */
export interface CoherenceOptions {
  /** Silence longer than this many heartbeats marks the stream dead. @default 2 */
  heartbeatsMissed?: number;
  /** First reconnection delay, in ms; doubles up to `reconnectMaxMs`. @default 50 */
  reconnectBaseMs?: number;
  /** Longest reconnection delay, in ms. @default 2000 */
  reconnectMaxMs?: number;
}

interface Cursor {
  streamId: string;
  seq: bigint;
  ready: boolean;
  /** Bumped by every RESET, CLEAR or loss of the stream: a read that saw it change does not cache. */
  epoch: number;
}

/** Keys whose last invalidation is remembered at most; past it everything counts as changed. */
const MAX_TRACKED_KEYS = 100_000;

/** Where a read began, to tell afterwards whether its key changed while it was in flight. */
export interface ReadMark {
  readonly epoch: number;
  readonly counter: number;
}

/**
 * Keeps one Watch stream open for the namespaces the local tier caches, and
 * says when a namespace's local copies may be served: only while its stream
 * is READY and has been heard from within `heartbeatsMissed` heartbeats.
 * A broken stream stops serving at once; on reconnect the server replays
 * what was missed (or RESETs, and everything held is dropped).
 */
export class CoherenceWatcher {
  readonly #rpc: ServiceClient<typeof CacheService>;
  readonly #listener: CoherenceListener;
  readonly #options: Required<CoherenceOptions>;
  readonly #cursors = new Map<string, Cursor>();
  #controller: AbortController | undefined;
  #lastHeard = 0;
  #heartbeatMs = 1000;
  #closed = false;
  #failures = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #silenceTimer: NodeJS.Timeout | undefined;
  /** Counts key invalidations; `#changedAt` keeps the count at each key's last one. */
  #counter = 0;
  readonly #changedAt = new Map<string, number>();

  constructor(rpc: ServiceClient<typeof CacheService>, listener: CoherenceListener, options: CoherenceOptions = {}) {
    this.#rpc = rpc;
    this.#listener = listener;
    this.#options = { heartbeatsMissed: 2, reconnectBaseMs: 50, reconnectMaxMs: 2000, ...options };
  }

  /**
   * True when local copies of `namespace` may be served now. Cheap (a flag
   * read): a timer checking every quarter heartbeat marks a silent stream
   * unready, so the silence bound is `heartbeatsMissed` + ¼ heartbeats.
   */
  isCoherent(namespace: string): boolean {
    return this.#cursors.get(namespace)?.ready === true;
  }

  #checkSilence(): void {
    if (this.#closed) return;
    const silentFor = Date.now() - this.#lastHeard;
    if ([...this.#cursors.values()].some((c) => c.ready) && silentFor > this.#heartbeatMs * this.#options.heartbeatsMissed) {
      this.#markAllUnready();
      this.#restart();
    }
  }

  #armSilenceTimer(): void {
    clearInterval(this.#silenceTimer);
    this.#silenceTimer = setInterval(() => this.#checkSilence(), Math.max(10, this.#heartbeatMs / 4));
    this.#silenceTimer.unref();
  }

  /** The namespace's flush counter (see Cursor.epoch). */
  epoch(namespace: string): number {
    return this.#cursors.get(namespace)?.epoch ?? -1;
  }

  /** Marks the start of a read of `namespace`. */
  mark(namespace: string): ReadMark {
    return { epoch: this.epoch(namespace), counter: this.#counter };
  }

  /** True when neither the namespace was flushed nor `key` invalidated since `mark`. */
  unchangedSince(namespace: string, key: string, mark: ReadMark): boolean {
    if (this.epoch(namespace) !== mark.epoch) return false;
    const changed = this.#changedAt.get(`${namespace}\u0000${key}`);
    return changed === undefined || changed <= mark.counter;
  }

  #keyChanged(namespace: string, keys: readonly string[]): void {
    this.#counter++;
    if (this.#changedAt.size + keys.length > MAX_TRACKED_KEYS) {
      this.#changedAt.clear();
      for (const cursor of this.#cursors.values()) cursor.epoch++;
      return;
    }
    for (const key of keys) this.#changedAt.set(`${namespace}\u0000${key}`, this.#counter);
  }

  /** Starts watching `namespace` (restarting the stream to include it). */
  watch(namespace: string): void {
    if (this.#closed || this.#cursors.has(namespace)) return;
    this.#cursors.set(namespace, { streamId: "", seq: 0n, ready: false, epoch: 0 });
    this.#restart();
  }

  #markAllUnready(): void {
    for (const cursor of this.#cursors.values()) {
      cursor.ready = false;
      cursor.epoch++;
    }
  }

  #restart(): void {
    this.#controller?.abort();
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    if (this.#closed) return;
    const controller = new AbortController();
    this.#controller = controller;
    void this.#run(controller);
  }

  async #run(controller: AbortController): Promise<void> {
    const cursors = [...this.#cursors].map(([namespace, c]) => ({ namespace, streamId: c.streamId, afterSeq: c.seq }));
    try {
      for await (const event of this.#rpc.watch({ cursors }, { signal: controller.signal, deadline: Infinity })) {
        if (controller.signal.aborted) return;
        this.#lastHeard = Date.now();
        this.#apply(event);
      }
    } catch {
      // the stream broke: handled below
    }
    if (controller.signal.aborted || this.#closed) return;
    this.#markAllUnready();
    this.#failures++;
    const delay = Math.min(this.#options.reconnectMaxMs, this.#options.reconnectBaseMs * 2 ** Math.min(this.#failures, 10));
    this.#reconnectTimer = setTimeout(() => this.#restart(), delay);
    this.#reconnectTimer.unref();
  }

  #apply(event: WatchResponse): void {
    if (event.heartbeatMs > 0 && event.heartbeatMs !== this.#heartbeatMs) {
      this.#heartbeatMs = event.heartbeatMs;
      this.#armSilenceTimer();
    }
    if (this.#silenceTimer === undefined) this.#armSilenceTimer();
    if (event.kind === WatchEventKind.HEARTBEAT) return;
    const cursor = this.#cursors.get(event.namespace);
    if (!cursor) return;
    cursor.streamId = event.streamId;
    cursor.seq = event.seq;
    switch (event.kind) {
      case WatchEventKind.READY:
        cursor.ready = true;
        this.#failures = 0;
        break;
      case WatchEventKind.RESET:
      case WatchEventKind.CLEAR:
        cursor.epoch++;
        this.#listener.flush(event.namespace);
        break;
      default:
        this.#keyChanged(event.namespace, event.keys);
        this.#listener.invalidate(event.namespace, event.keys);
    }
  }

  /** Stops watching. */
  close(): void {
    this.#closed = true;
    this.#markAllUnready();
    clearInterval(this.#silenceTimer);
    this.#controller?.abort();
    clearTimeout(this.#reconnectTimer);
  }
}
