import { callContextOf } from "../helpers/call-context.js";
import { create } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { ValueTooLargeError } from "../../core/errors.js";
import type { CallContext } from "../../core/grpc-adapter.js";
import { WatchEventKind, WatchRequestSchema } from "../../gen/tiercache/v1/cache_pb.js";
import { InvalidationBus } from "../../server/engine/invalidation-bus.js";
import type { WatchMessage } from "../../server/rpc/watch-queue.js";
import { watchStream, type WatchOptions } from "../../server/rpc/watch-stream.js";
import { WatcherSlots } from "../../server/rpc/watcher-slots.js";

/** A Watch call driven by hand: `next()` reads one message, `end()` cancels it as a client would. */
function open(bus: InvalidationBus, namespaces: string[], options: WatchOptions = {}) {
  const controller = new AbortController();
  const ctx: CallContext = callContextOf(controller.signal);
  const request = create(WatchRequestSchema, { cursors: namespaces.map((namespace) => ({ namespace })) });
  const stream = watchStream(bus, request, ctx, { heartbeatMs: 60_000, ...options })[Symbol.asyncIterator]();
  return {
    next: async (): Promise<WatchMessage> => (await stream.next()).value as WatchMessage,
    /** Reads `count` messages, as "KIND namespace". */
    read: async (count: number) => {
      const out: string[] = [];
      for (let i = 0; i < count; i++) {
        const m = (await stream.next()).value as WatchMessage;
        out.push(`${WatchEventKind[m.kind!]} ${m.namespace}`);
      }
      return out;
    },
    end: async () => {
      controller.abort();
      await stream.next();
    },
  };
}

const names = (count: number, prefix = "ns") => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

describe("the Watch stream", () => {
  it("refuses more cursors than max-watch-namespaces before subscribing to anything", async () => {
    const bus = new InvalidationBus();
    const watch = open(bus, names(11), { maxNamespaces: 10 });
    const refusal = await watch.next().catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(ValueTooLargeError);
    expect((refusal as Error).message).toBe("a Watch may name at most max-watch-namespaces (10) namespaces; this one names 11");
    expect(bus.namespaceLogs).toBe(0);

    const atLimit = open(bus, names(10), { maxNamespaces: 10 });
    expect(await atLimit.read(10)).toEqual(names(10).map((ns) => `READY ${ns}`));
    await atLimit.end();
    expect(bus.namespaceLogs).toBe(0); // its subscriptions are gone, and so are the logs they created
  });

  it("holds a max-watchers slot while open, refuses a stream past the limit, and gives the slot back when it ends", async () => {
    const bus = new InvalidationBus();
    const watchers = new WatcherSlots(2);
    const first = open(bus, ["a"], { watchers });
    const second = open(bus, ["b"], { watchers });
    await first.next();
    await second.next();
    expect(watchers.open).toBe(2);
    const third = await open(bus, ["c"], { watchers }).next().catch((err: unknown) => err);
    expect((third as Error).message).toMatch(/at most max-watchers \(2\)/);
    await first.end();
    expect(watchers.open).toBe(1);
    const fourth = open(bus, ["d"], { watchers });
    expect(await fourth.read(1)).toEqual(["READY d"]);
    await second.end();
    await fourth.end();
    expect(watchers.open).toBe(0);
  });

  it("delivers each event to a watcher of many namespaces, in order", async () => {
    const bus = new InvalidationBus();
    const watch = open(bus, names(1000));
    await watch.read(1000);
    for (let i = 0; i < 1000; i += 7) bus.publish({ kind: "delete", namespace: `ns${i}`, keys: [`k${i}`] });
    const expected = names(1000).filter((_, i) => i % 7 === 0).map((ns) => `DELETE ${ns}`);
    expect(await watch.read(expected.length)).toEqual(expected);
    await watch.end();
  });

  it("gives a slow reader RESET + READY for the namespaces it fell behind on, then live events again", async () => {
    const bus = new InvalidationBus();
    const watch = open(bus, names(200), { maxQueuedEvents: 50 });
    await watch.read(200);
    // The reader stops reading while 10,000 events arrive across its namespaces.
    for (let i = 0; i < 10_000; i++) bus.publish({ kind: "delete", namespace: `ns${i % 200}`, keys: [`k${i}`] });
    const caughtUp = await watch.read(400);
    expect(caughtUp.filter((m) => m.startsWith("RESET"))).toEqual(names(200).map((ns) => `RESET ${ns}`));
    expect(caughtUp.filter((_, i) => i % 2 === 1)).toEqual(names(200).map((ns) => `READY ${ns}`));
    bus.publish({ kind: "delete", namespace: "ns3", keys: ["after"] });
    const live = await watch.next();
    expect([live.kind, live.namespace, live.keys, live.seq]).toEqual([WatchEventKind.DELETE, "ns3", ["after"], BigInt(bus.currentSeq("ns3"))]);
    await watch.end();
  });

  it("a RESET carries the namespace's sequence number, so that the events after it resume from there", async () => {
    const bus = new InvalidationBus();
    const watch = open(bus, ["a"], { maxQueuedEvents: 2 });
    await watch.next();
    for (let i = 0; i < 4; i++) bus.publish({ kind: "delete", namespace: "a", keys: [`k${i}`] }); // past 2 queued (+1 for the READY)
    const reset = await watch.next();
    const ready = await watch.next();
    expect([reset.kind, ready.kind]).toEqual([WatchEventKind.RESET, WatchEventKind.READY]);
    expect(reset.seq).toBe(BigInt(bus.currentSeq("a")));
    expect(ready.seq).toBe(reset.seq);
    await watch.end();
  });
});
