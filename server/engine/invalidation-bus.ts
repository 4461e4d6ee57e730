import { randomUUID } from "node:crypto";

/** What changed in a namespace. */
export type ChangeKind = "set" | "delete" | "touch" | "clear";

/** A change, as it travels between server instances (no sequence number yet). */
export interface Change {
  kind: ChangeKind;
  namespace: string;
  /** The keys (empty for "clear"). */
  keys: readonly string[];
}

/** A numbered change of one namespace, as watchers receive it. */
export interface NumberedChange extends Change {
  seq: number;
}

/** What a watcher receives: numbered changes, or "reset" when it must forget the namespace. */
export type WatchEvent = NumberedChange | { kind: "reset"; namespace: string; seq: number };

/** A subscription to one or more namespaces. */
export interface Subscription {
  /** Stops delivery. */
  close(): void;
}

/** Options of an {@link InvalidationBus}. */
export interface InvalidationBusOptions {
  /** Changes kept per namespace for resuming watchers. @default 10000 */
  historySize?: number;
}

/** Keys kept in one namespace's history at most (besides the event count bound). */
const MAX_HISTORY_KEYS = 100_000;

class NamespaceLog {
  seq = 0;
  readonly history: NumberedChange[] = [];
  historyKeys = 0;
  readonly listeners = new Set<(event: WatchEvent) => void>();
  constructor(readonly size: number) {}

  append(change: Change): NumberedChange {
    const numbered = { ...change, seq: ++this.seq };
    this.history.push(numbered);
    this.historyKeys += change.keys.length;
    let drop = 0;
    while (this.history.length - drop > this.size || (this.historyKeys > MAX_HISTORY_KEYS && this.history.length - drop > 1)) {
      this.historyKeys -= this.history[drop]!.keys.length;
      drop++;
    }
    if (drop > 0) this.history.splice(0, drop);
    return numbered;
  }

  /** The changes after `seq`, or undefined when some of them are no longer held. */
  since(seq: number): NumberedChange[] | undefined {
    if (seq > this.seq) return undefined;
    if (seq === this.seq) return [];
    if (this.history.length === 0) return undefined;
    const first = this.history[0];
    if (!first || first.seq > seq + 1) return undefined;
    return this.history.slice(seq + 1 - first.seq);
  }
}

/**
 * Numbers the changes of each namespace in this process and hands them to
 * watchers, keeping a bounded history so a reconnecting watcher can resume.
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
  readonly #historySize: number;

  constructor(options: InvalidationBusOptions = {}) {
    this.#historySize = options.historySize ?? 10_000;
  }

  #log(namespace: string): NamespaceLog {
    let log = this.#logs.get(namespace);
    if (!log) this.#logs.set(namespace, (log = new NamespaceLog(this.#historySize)));
    return log;
  }

  /** Numbers `change` and delivers it to the namespace's watchers. */
  publish(change: Change): NumberedChange {
    const log = this.#log(change.namespace);
    const numbered = log.append(change);
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
    for (const [namespace, log] of this.#logs) {
      log.history.length = 0;
      log.historyKeys = 0;
      for (const listener of log.listeners) listener({ kind: "reset", namespace, seq: log.seq });
    }
  }

  /** The current sequence number of a namespace. */
  currentSeq(namespace: string): number {
    return this.#logs.get(namespace)?.seq ?? 0;
  }

  /**
   * Subscribes to a namespace from a cursor: returns the changes to replay
   * (or "reset" when the cursor cannot be resumed) and starts live delivery.
   */
  subscribe(
    namespace: string,
    cursor: { streamId: string; afterSeq: number },
    listener: (event: WatchEvent) => void,
  ): { replay: WatchEvent[]; subscription: Subscription } {
    const log = this.#log(namespace);
    let replay: WatchEvent[];
    if (cursor.streamId === "") replay = [];
    else if (cursor.streamId !== this.streamId) replay = [{ kind: "reset", namespace, seq: log.seq }];
    else replay = log.since(cursor.afterSeq) ?? [{ kind: "reset", namespace, seq: log.seq }];
    log.listeners.add(listener);
    return { replay, subscription: { close: () => log.listeners.delete(listener) } };
  }
}
