import { randomUUID } from "node:crypto";
import { Fifo } from "./fifo.js";
import { eventBytes, namespaceLogBytes } from "./history-size.js";

/** What changed in a namespace ("tags": values with any of the tags named in `keys` were invalidated). */
export type ChangeKind = "set" | "delete" | "touch" | "clear" | "tags";

/** A change, as it travels between server instances (no sequence number yet). */
export interface Change {
  kind: ChangeKind;
  namespace: string;
  /** The keys (empty for "clear"; the tags for "tags"). */
  keys: readonly string[];
  /** The client whose one-key Set made this change, when it named itself (see SetRequest.writer_id). */
  origin?: WriteOrigin;
}

/** Who made a write: the writer's id and its own number for the write. */
export interface WriteOrigin {
  readonly writerId: string;
  readonly writeSeq: bigint;
}

/** A numbered change of one namespace, as watchers receive it. */
export interface NumberedChange extends Change {
  seq: number;
}

/** What a watcher receives: numbered changes, or "reset" when it must forget the namespace. */
export type WatchEvent = NumberedChange | { kind: "reset"; namespace: string; seq: number };

/** A subscription to one namespace. */
export interface Subscription {
  /** Stops delivery. Safe to call more than once. */
  close(): void;
}

/** Where a watcher resumes: the numbering it saw (`streamId`, "" for none) and the last sequence number it got. */
export interface Cursor {
  streamId: string;
  afterSeq: number;
}

/** Options of an {@link InvalidationBus}. */
export interface InvalidationBusOptions {
  /**
   * Watch history kept for resuming watchers, across all namespaces, in
   * estimated bytes (see `history-size.ts`): events, their keys, and the logs
   * of namespaces nobody watches. The oldest events go first; a cursor that
   * needed one of them gets RESET. 0 keeps none.
   * @default 33554432 (32 MiB)
   */
  maxRetainedBytes?: number;
}

/** The default of {@link InvalidationBusOptions.maxRetainedBytes}. */
export const DEFAULT_MAX_RETAINED_BYTES = 32 * 1024 ** 2;

type Listener = (event: WatchEvent) => void;

/** One namespace's numbering, retained history (oldest first) and live listeners. */
class NamespaceLog {
  readonly history = new Fifo<NumberedChange>();
  readonly listeners = new Set<Listener>();
  /** The sequence number this log started from: its events are numbered after it. */
  readonly startSeq: number;
  constructor(
    readonly name: string,
    public seq: number,
  ) {
    this.startSeq = seq;
  }

  /**
   * The changes after `afterSeq`, or undefined when they cannot all be given:
   * from another life of this namespace's log, no longer retained, or more
   * than `maxReplay` of them.
   */
  since(afterSeq: number, maxReplay: number): NumberedChange[] | undefined {
    if (afterSeq > this.seq || afterSeq < this.startSeq) return undefined;
    if (afterSeq === this.seq) return [];
    if (this.seq - afterSeq > maxReplay) return undefined;
    const first = this.history.peek();
    if (!first || first.seq > afterSeq + 1) return undefined;
    const replay: NumberedChange[] = [];
    for (let i = afterSeq + 1 - first.seq; i < this.history.length; i++) replay.push(this.history.at(i)!);
    return replay;
  }
}

/**
 * Numbers the changes of each namespace in this process and hands them to
 * watchers, keeping a history so that a reconnecting watcher can resume.
 *
 * The history is bounded for the server as a whole ({@link InvalidationBusOptions.maxRetainedBytes}):
 * one global FIFO of retained events is trimmed from its oldest end, O(1)
 * amortized per event. A namespace's log is freed as soon as nobody watches it
 * and it holds no history; a later log of the same namespace numbers on from
 * the bus-wide count, so a cursor from the freed one can never resume into it
 * (it gets RESET).
 *
 * `streamId` names this numbering: cursors from another process (or an
 * earlier run) cannot resume and get a reset.
 */
export class InvalidationBus {
  /**
   * Identifies the current numbering: new per process, and renewed by
   * {@link resetAll}, so that a cursor from before a reset cannot resume.
   */
  streamId = randomUUID();
  readonly #logs = new Map<string, NamespaceLog>();
  /** Every retained event, oldest first, across namespaces. */
  readonly #retained = new Fifo<NumberedChange>();
  #retainedBytes = 0;
  #maxRetainedBytes: number;
  /** Events numbered so far, across namespaces: where a new log starts numbering. */
  #numbered = 0;

  constructor(options: InvalidationBusOptions = {}) {
    this.#maxRetainedBytes = checkBound(options.maxRetainedBytes ?? DEFAULT_MAX_RETAINED_BYTES);
  }

  /** Estimated bytes of history retained now (never more than {@link maxRetainedBytes}); logs of watched namespaces are the watchers' cost, not counted here. */
  get retainedBytes(): number {
    return this.#retainedBytes;
  }

  /** The bound on {@link retainedBytes}. Lowering it trims the history at once. */
  get maxRetainedBytes(): number {
    return this.#maxRetainedBytes;
  }

  set maxRetainedBytes(bytes: number) {
    this.#maxRetainedBytes = checkBound(bytes);
    this.#trim();
  }

  /** Events retained now, across namespaces. */
  get retainedEvents(): number {
    return this.#retained.length;
  }

  /** Namespace logs held now (watched, or holding history). */
  get namespaceLogs(): number {
    return this.#logs.size;
  }

  /** Numbers `change` and delivers it to the namespace's watchers. */
  publish(change: Change): NumberedChange {
    const log = this.#logs.get(change.namespace) ?? this.#open(change.namespace);
    // Own copy of the keys: an exact-size array, not a caller's array with room to grow.
    const numbered: NumberedChange = { kind: change.kind, namespace: log.name, keys: change.keys.slice(), seq: ++log.seq };
    if (change.origin !== undefined) numbered.origin = change.origin;
    this.#numbered++;
    log.history.push(numbered);
    this.#retained.push(numbered);
    this.#retainedBytes += eventBytes(numbered.keys, numbered.origin?.writerId);
    this.#trim();
    for (const listener of log.listeners) listener(numbered);
    return numbered;
  }

  /**
   * Tells every watcher of every namespace to forget it (changes may have been
   * missed), and starts a new numbering so that watchers not connected right
   * now get RESET when they resume.
   */
  resetAll(): void {
    this.streamId = randomUUID();
    this.#retained.clear();
    for (const [namespace, log] of this.#logs) {
      log.history.clear();
      if (log.listeners.size === 0) this.#free(log);
      for (const listener of log.listeners) listener({ kind: "reset", namespace, seq: log.seq });
    }
    this.#retainedBytes = 0;
  }

  /** The current sequence number of a namespace. */
  currentSeq(namespace: string): number {
    return this.#logs.get(namespace)?.seq ?? this.#numbered;
  }

  /**
   * Subscribes to a namespace from a cursor: returns the changes to replay
   * (or "reset" when the cursor cannot be resumed, or would replay more than
   * `maxReplay` changes) and starts live delivery.
   */
  subscribe(namespace: string, cursor: Cursor, listener: Listener, maxReplay = Infinity): { replay: WatchEvent[]; subscription: Subscription } {
    const log = this.#logs.get(namespace) ?? this.#open(namespace);
    if (log.listeners.size === 0) this.#retainedBytes -= namespaceLogBytes(log.name); // watched from now on: the watchers' cost
    log.listeners.add(listener);
    let replay: WatchEvent[];
    if (cursor.streamId === "") replay = [];
    else if (cursor.streamId !== this.streamId) replay = [{ kind: "reset", namespace, seq: log.seq }];
    else replay = log.since(cursor.afterSeq, maxReplay) ?? [{ kind: "reset", namespace, seq: log.seq }];
    return { replay, subscription: { close: () => this.#unsubscribe(log, listener) } };
  }

  /** A new, unwatched log (counted in the history until someone watches it). */
  #open(namespace: string): NamespaceLog {
    const log = new NamespaceLog(namespace, this.#numbered);
    this.#logs.set(namespace, log);
    this.#retainedBytes += namespaceLogBytes(namespace);
    return log;
  }

  #unsubscribe(log: NamespaceLog, listener: Listener): void {
    if (!log.listeners.delete(listener) || log.listeners.size > 0) return;
    if (log.history.length === 0) {
      this.#logs.delete(log.name);
      return;
    }
    this.#retainedBytes += namespaceLogBytes(log.name); // kept only for its history now
    this.#trim();
  }

  /** Drops the oldest events until the history fits its bound, freeing unwatched logs left empty. */
  #trim(): void {
    while (this.#retainedBytes > this.#maxRetainedBytes && this.#retained.length > 0) {
      const oldest = this.#retained.shift()!;
      const log = this.#logs.get(oldest.namespace)!;
      log.history.shift(); // the oldest event of all is its namespace's oldest too
      this.#retainedBytes -= eventBytes(oldest.keys, oldest.origin?.writerId);
      if (log.history.length === 0 && log.listeners.size === 0) this.#free(log);
    }
  }

  /** Forgets an unwatched log. */
  #free(log: NamespaceLog): void {
    this.#logs.delete(log.name);
    this.#retainedBytes -= namespaceLogBytes(log.name);
  }
}

function checkBound(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`maxRetainedBytes must be a whole number of bytes, not ${bytes}`);
  return bytes;
}
