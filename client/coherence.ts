import type { Metadata } from "@grpc/grpc-js";
import type { CallOptions, ServiceClient } from "../core/grpc-adapter.js";
import { RpcError, Status } from "../core/rpc-error.js";
import { CacheService, WatchEventKind, type WatchResponse } from "../gen/tiercache/v1/cache_pb.js";

/** What the watcher tells the local tier. */
export interface CoherenceListener {
  /** These keys changed: drop them. */
  invalidate(namespace: string, keys: readonly string[]): void;
  /** Anything held for the namespace may be stale: drop it all. */
  flush(namespace: string): void;
  /** READY: every event of the namespace until now was delivered, or left out for this watcher's writer id. */
  caughtUp?(namespace: string): void;
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

/** Statuses that a Watch of one namespace keeps getting however often it is retried. */
function refusesNamespace(err: unknown): boolean {
  return RpcError.is(err, Status.PERMISSION_DENIED) || RpcError.is(err, Status.INVALID_ARGUMENT);
}

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
 *
 * A namespace the server will not let this client watch (PERMISSION_DENIED
 * for its token, or INVALID_ARGUMENT) would fail the shared stream on every
 * reconnection: when the stream fails so, each namespace is tried alone, and
 * those refused are dropped from the stream for the life of the watcher and
 * never served locally.
 */
export class CoherenceWatcher {
  readonly #rpc: ServiceClient<typeof CacheService>;
  readonly #listener: CoherenceListener;
  readonly #options: Required<CoherenceOptions>;
  readonly #metadata: () => Metadata | undefined;
  readonly #cursors = new Map<string, Cursor>();
  /** The cursor {@link isCoherent} found last: local hits mostly ask about one namespace. */
  #last: { namespace: string; cursor: Cursor } | undefined;
  readonly #refused = new Set<string>();
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
  /** The server leaves this writer's SET events out of the stream (see WatchRequest.writer_id); "" = none. */
  #writerId = "";

  /** `metadata` gives each Watch call its metadata (the client's credentials). */
  constructor(rpc: ServiceClient<typeof CacheService>, listener: CoherenceListener, options: CoherenceOptions = {}, metadata: () => Metadata | undefined = () => undefined) {
    this.#rpc = rpc;
    this.#listener = listener;
    this.#metadata = metadata;
    this.#options = { heartbeatsMissed: 2, reconnectBaseMs: 50, reconnectMaxMs: 2000, ...options };
  }

  /**
   * True when local copies of `namespace` may be served now. Cheap (a flag
   * read): a timer checking every quarter heartbeat marks a silent stream
   * unready, so the silence bound is `heartbeatsMissed` + ¼ heartbeats.
   */
  isCoherent(namespace: string): boolean {
    const last = this.#last;
    if (last !== undefined && last.namespace === namespace) return last.cursor.ready;
    const cursor = this.#cursors.get(namespace);
    if (cursor === undefined) return false;
    this.#last = { namespace, cursor };
    return cursor.ready;
  }

  #checkSilence(): void {
    if (this.#closed) return;
    const silentFor = performance.now() - this.#lastHeard;
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

  /**
   * True when a read answered by the instance whose Watch stream id is
   * `streamId` may be kept: this client's stream for the namespace is that
   * same stream (an instance it does not watch, or one reset since, may
   * hold a copy whose invalidation this client will never hear).
   */
  watches(namespace: string, streamId: string): boolean {
    const cursor = this.#cursors.get(namespace);
    return cursor !== undefined && cursor.ready && streamId !== "" && cursor.streamId === streamId;
  }

  /** True when neither the namespace was flushed nor `key` invalidated since `mark`. */
  unchangedSince(namespace: string, key: string, mark: ReadMark): boolean {
    if (this.epoch(namespace) !== mark.epoch) return false;
    const changed = this.#changedAt.get(`${namespace}\u0000${key}`);
    return changed === undefined || changed <= mark.counter;
  }

  /** Marks `key` changed by this client (its own write): reads of it in flight will not keep what they got. */
  changedLocally(namespace: string, key: string): void {
    this.#keyChanged(namespace, [key]);
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

  /**
   * From now on, watches as `writerId`: the server leaves out the SET events
   * of writes tagged with it, which their writer settles by their answers.
   * Restarts an open stream, from the cursors as they are, under the new id;
   * one waiting to reconnect keeps its backoff.
   */
  watchAs(writerId: string): void {
    if (writerId === this.#writerId) return;
    this.#writerId = writerId;
    // A stream waiting out its reconnection backoff is not open: its next attempt names the new id.
    if (this.#cursors.size > 0 && this.#reconnectTimer === undefined) this.#restart();
  }

  /** Starts watching `namespace` (restarting the stream to include it), unless it was refused. */
  watch(namespace: string): void {
    if (this.#closed || this.#cursors.has(namespace) || this.#refused.has(namespace)) return;
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
    let failure: unknown;
    try {
      for await (const event of this.#rpc.watch({ cursors, writerId: this.#writerId }, this.#callOptions({ signal: controller.signal, deadline: Infinity }))) {
        if (controller.signal.aborted) return;
        this.#lastHeard = performance.now();
        this.#apply(event);
      }
    } catch (err) {
      failure = err;
    }
    if (controller.signal.aborted || this.#closed) return;
    this.#markAllUnready();
    if (refusesNamespace(failure) && (await this.#dropRefused(controller))) {
      if (!controller.signal.aborted) this.#restart();
      return;
    }
    if (controller.signal.aborted || this.#closed) return;
    this.#failures++;
    const delay = Math.min(this.#options.reconnectMaxMs, this.#options.reconnectBaseMs * 2 ** Math.min(this.#failures, 10));
    this.#reconnectTimer = setTimeout(() => this.#restart(), delay);
    this.#reconnectTimer.unref();
  }

  #callOptions(options: CallOptions): CallOptions {
    const metadata = this.#metadata();
    return metadata === undefined ? options : { ...options, metadata };
  }

  /** Tries a Watch of each namespace alone; stops watching those refused. True when one was. */
  async #dropRefused(controller: AbortController): Promise<boolean> {
    const namespaces = [...this.#cursors.keys()];
    const refused = await Promise.all(namespaces.map((namespace) => this.#isRefusedAlone(namespace, controller.signal)));
    if (controller.signal.aborted || this.#closed) return false;
    let dropped = false;
    namespaces.forEach((namespace, i) => {
      if (!refused[i]) return;
      this.#cursors.delete(namespace);
      this.#last = undefined;
      this.#refused.add(namespace);
      this.#listener.flush(namespace);
      dropped = true;
    });
    return dropped;
  }

  async #isRefusedAlone(namespace: string, signal: AbortSignal): Promise<boolean> {
    const probe = new AbortController();
    const stop = () => probe.abort();
    signal.addEventListener("abort", stop, { once: true });
    try {
      for await (const _ of this.#rpc.watch({ cursors: [{ namespace }] }, this.#callOptions({ signal: probe.signal, timeoutMs: 10_000 }))) break;
      return false;
    } catch (err) {
      return refusesNamespace(err);
    } finally {
      signal.removeEventListener("abort", stop);
      probe.abort();
    }
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
        this.#listener.caughtUp?.(event.namespace);
        break;
      case WatchEventKind.RESET:
      case WatchEventKind.CLEAR:
      case WatchEventKind.TAGS: // local copies do not know their tags: drop them all
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
