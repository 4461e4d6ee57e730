import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CallContext } from "../../core/grpc-adapter.js";
import { WatchEventKind, type WatchRequest, type WatchResponseSchema } from "../../gen/tiercache/v1/cache_pb.js";
import type { InvalidationBus, Subscription, WatchEvent } from "../engine/invalidation-bus.js";
import { checkNamespace } from "../engine/validation.js";

type WatchMessage = MessageInitShape<typeof WatchResponseSchema>;

/** Options of the Watch stream. */
export interface WatchOptions {
  /** A heartbeat is sent when nothing else was for this long, in ms. @default 1000 */
  heartbeatMs?: number;
  /** Events queued for a slow reader before it gets RESET instead. @default 10000 */
  maxQueuedEvents?: number;
  /** Ends every Watch stream (OK status) when aborted: a draining server must not wait for them. */
  closing?: AbortSignal;
}

const KINDS: Record<WatchEvent["kind"], WatchEventKind> = {
  set: WatchEventKind.SET,
  delete: WatchEventKind.DELETE,
  touch: WatchEventKind.TOUCH,
  clear: WatchEventKind.CLEAR,
  reset: WatchEventKind.RESET,
};

/**
 * The Watch RPC: replays what each cursor missed (or RESET), then READY per
 * namespace, then live events and heartbeats until the client goes away.
 */
export async function* watchStream(bus: InvalidationBus, request: WatchRequest, ctx: CallContext, options: WatchOptions = {}): AsyncIterable<WatchMessage> {
  const heartbeatMs = options.heartbeatMs ?? 1000;
  const maxQueued = options.maxQueuedEvents ?? 10_000;
  const toMessage = (event: WatchEvent): WatchMessage => ({
    kind: KINDS[event.kind],
    namespace: event.namespace,
    keys: "keys" in event ? [...event.keys] : [],
    seq: BigInt(event.seq),
    streamId: bus.streamId,
  });
  const ready = (namespace: string): WatchMessage => ({
    kind: WatchEventKind.READY,
    namespace,
    seq: BigInt(bus.currentSeq(namespace)),
    streamId: bus.streamId,
    heartbeatMs,
  });

  const queue: WatchMessage[] = [];
  let wake: (() => void) | undefined;
  const push = (message: WatchMessage) => {
    queue.push(message);
    if (queue.length > maxQueued) {
      // Too slow a reader: replace the backlog by RESET + READY per namespace
      // (the client drops its copies and serves again from fresh reads).
      const namespaces = new Set(queue.map((m) => m.namespace ?? ""));
      queue.length = 0;
      for (const namespace of namespaces) {
        queue.push({ kind: WatchEventKind.RESET, namespace, seq: BigInt(bus.currentSeq(namespace)), streamId: bus.streamId }, ready(namespace));
      }
    }
    wake?.();
  };
  const stop = () => wake?.();
  const closing = options.closing;
  const done = () => ctx.signal.aborted || closing?.aborted === true;
  ctx.signal.addEventListener("abort", stop);
  closing?.addEventListener("abort", stop);

  const subscriptions: Subscription[] = [];
  const namespaces = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  try {
    for (const cursor of request.cursors) {
      const namespace = checkNamespace(cursor.namespace);
      if (namespaces.has(namespace)) continue;
      namespaces.add(namespace);
      const { replay, subscription } = bus.subscribe(namespace, { streamId: cursor.streamId, afterSeq: Number(cursor.afterSeq) }, (event) => push(toMessage(event)));
      subscriptions.push(subscription);
      for (const event of replay) push(toMessage(event));
      push(ready(namespace));
    }
    while (!done()) {
      while (queue.length > 0 && !done()) yield queue.shift()!;
      if (done()) break;
      const heartbeat = await new Promise<boolean>((resolve) => {
        wake = () => resolve(false);
        timer = setTimeout(() => resolve(true), heartbeatMs);
      });
      clearTimeout(timer);
      wake = undefined;
      if (heartbeat && queue.length === 0 && !done()) yield { kind: WatchEventKind.HEARTBEAT, streamId: bus.streamId, heartbeatMs };
    }
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener("abort", stop);
    closing?.removeEventListener("abort", stop);
    for (const subscription of subscriptions) subscription.close();
  }
}
