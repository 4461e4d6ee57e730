import { ValueTooLargeError } from "../../core/errors.js";
import type { CallContext } from "../../core/grpc-adapter.js";
import { WatchEventKind, type WatchRequest } from "../../gen/tiercache/v1/cache_pb.js";
import type { InvalidationBus, Subscription, WatchEvent } from "../engine/invalidation-bus.js";
import { checkNamespace, checkWriterId } from "../engine/validation.js";
import { WatchQueue, type WatchMessage } from "./watch-queue.js";
import type { WatcherSlots } from "./watcher-slots.js";

/** The default of {@link WatchOptions.heartbeatMs}. */
export const DEFAULT_HEARTBEAT_MS = 1000;

/** Options of the Watch stream. */
export interface WatchOptions {
  /** A heartbeat is sent when nothing else was for this long, in ms. @default 1000 */
  heartbeatMs?: number;
  /** Messages queued for a slow reader before it gets RESET instead. @default 10000 */
  maxQueuedEvents?: number;
  /** Keys in the messages queued for a slow reader before it gets RESET instead. @default 100000 */
  maxQueuedKeys?: number;
  /** Most cursors (namespaces) one Watch call may name; more is RESOURCE_EXHAUSTED. @default 1000 */
  maxNamespaces?: number;
  /** The server's count of open Watch streams (`--max-watchers`); none = unbounded. */
  watchers?: WatcherSlots;
  /** Ends every Watch stream (OK status) when aborted: a draining server must not wait for them. */
  closing?: AbortSignal;
}

/**
 * Cursors subscribed, or messages sent, between two turns given back to the
 * event loop: a Watch naming many namespaces must not hold up other calls
 * while it subscribes or catches up.
 */
const TURN = 256;

/**
 * A READY follows events left out for the watcher's writer within this many
 * ms (or a heartbeat, if shorter): until it comes, the client's cursor is
 * behind them, and a reconnection would replay from there (or RESET, when
 * the history no longer reaches back so far).
 */
const LEFT_OUT_READY_MS = 100;
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

const KINDS: Record<WatchEvent["kind"], WatchEventKind> = {
  set: WatchEventKind.SET,
  delete: WatchEventKind.DELETE,
  touch: WatchEventKind.TOUCH,
  clear: WatchEventKind.CLEAR,
  tags: WatchEventKind.TAGS,
  reset: WatchEventKind.RESET,
};

/**
 * The Watch RPC: replays what each cursor missed (or RESET), then READY per
 * namespace, then live events and heartbeats until the client goes away.
 * Work per event is O(1) whatever the number of namespaces watched; a reader
 * too slow for its queue gets RESET + READY per namespace it fell behind on.
 * SET events of the request's writer_id are left out, live and replayed; a
 * READY at the namespace's current seq follows within LEFT_OUT_READY_MS,
 * busy stream or not, so that the client's cursor moves past them. No event
 * names its writer: a watcher that learnt another client's writer_id could
 * send Sets under it that the other client would never hear of.
 */
export async function* watchStream(bus: InvalidationBus, request: WatchRequest, ctx: CallContext, options: WatchOptions = {}): AsyncIterable<WatchMessage> {
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const leftOutReadyMs = Math.min(heartbeatMs, LEFT_OUT_READY_MS);
  const maxQueued = options.maxQueuedEvents ?? 10_000;
  const maxNamespaces = options.maxNamespaces ?? 1000;
  if (request.cursors.length > maxNamespaces) {
    throw new ValueTooLargeError(`a Watch may name at most max-watch-namespaces (${maxNamespaces}) namespaces; this one names ${request.cursors.length}`);
  }
  const writerId = request.writerId;
  if (writerId !== "") checkWriterId(writerId);
  const leftOut = (event: WatchEvent): boolean => writerId !== "" && "origin" in event && event.origin !== undefined && event.origin.writerId === writerId;
  const toMessage = (event: WatchEvent): WatchMessage => ({
    kind: KINDS[event.kind],
    namespace: event.namespace,
    keys: "keys" in event ? [...event.keys] : [],
    seq: BigInt(event.seq),
    streamId: bus.streamId,
  });
  const ready = (namespace: string, seq: number): WatchMessage => ({
    kind: WatchEventKind.READY,
    namespace,
    seq: BigInt(seq),
    streamId: bus.streamId,
    heartbeatMs,
  });
  const queue = new WatchQueue({
    maxMessages: maxQueued + request.cursors.length, // a READY per namespace on top: they never overflow
    maxKeys: options.maxQueuedKeys ?? 100_000,
    resetOf: (namespace) => {
      const seq = bus.currentSeq(namespace);
      return [toMessage({ kind: "reset", namespace, seq }), ready(namespace, seq)];
    },
  });

  let wake: (() => void) | undefined;
  const push = (message: WatchMessage) => {
    queue.push(message);
    wake?.();
  };
  /** Namespaces with events left out since the last READY, and when that READY falls due. */
  const unreported = new Set<string>();
  let reportDue = Infinity;
  const leaveOut = (namespace: string) => {
    unreported.add(namespace);
    if (reportDue !== Infinity) return;
    reportDue = performance.now() + leftOutReadyMs;
    wake?.(); // a stream waiting for its heartbeat waits for the READY instead
  };
  const reportIfDue = (now: number) => {
    if (now < reportDue) return;
    for (const namespace of unreported) queue.push(ready(namespace, bus.currentSeq(namespace)));
    unreported.clear();
    reportDue = Infinity;
  };
  const stop = () => wake?.();
  const closing = options.closing;
  const done = () => ctx.signal.aborted || closing?.aborted === true;

  const release = options.watchers?.acquire();
  const subscriptions: Subscription[] = [];
  let timer: NodeJS.Timeout | undefined;
  ctx.signal.addEventListener("abort", stop);
  closing?.addEventListener("abort", stop);
  try {
    // Every namespace is checked before any is subscribed; the first cursor of a namespace named twice counts.
    const cursors = new Map<string, WatchRequest["cursors"][number]>();
    for (const cursor of request.cursors) {
      const namespace = checkNamespace(cursor.namespace);
      if (!cursors.has(namespace)) cursors.set(namespace, cursor);
    }
    for (const [namespace, cursor] of cursors) {
      if (subscriptions.length % TURN === TURN - 1) await nextTurn();
      if (done()) break;
      const listener = (event: WatchEvent) => (leftOut(event) ? leaveOut(namespace) : push(toMessage(event)));
      const { replay, subscription } = bus.subscribe(namespace, { streamId: cursor.streamId, afterSeq: Number(cursor.afterSeq) }, listener, maxQueued);
      subscriptions.push(subscription);
      for (const event of replay) if (!leftOut(event)) queue.push(toMessage(event));
      queue.push(ready(namespace, bus.currentSeq(namespace)));
    }
    let sent = 0;
    while (!done()) {
      reportIfDue(performance.now());
      for (let message = queue.shift(); message && !done(); message = queue.shift()) {
        yield message;
        if (++sent % TURN === 0) {
          await nextTurn();
          reportIfDue(performance.now());
        }
      }
      if (done()) break;
      const waitMs = Math.min(heartbeatMs, Math.max(0, reportDue - performance.now()));
      const heartbeat = await new Promise<boolean>((resolve) => {
        wake = () => resolve(false);
        timer = setTimeout(() => resolve(true), waitMs);
      });
      clearTimeout(timer);
      wake = undefined;
      if (heartbeat) reportIfDue(Infinity);
      if (heartbeat && queue.empty && !done()) yield { kind: WatchEventKind.HEARTBEAT, streamId: bus.streamId, heartbeatMs };
    }
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener("abort", stop);
    closing?.removeEventListener("abort", stop);
    for (const subscription of subscriptions) subscription.close();
    release?.();
  }
}
