import { callContextOf } from "../helpers/call-context.js";
import { create } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, ValueTooLargeError } from "../../core/errors.js";
import type { CallContext } from "../../core/grpc-adapter.js";
import { WatchEventKind, WatchRequestSchema } from "../../gen/tiercache/v1/cache_pb.js";
import { InvalidationBus } from "../../server/engine/invalidation-bus.js";
import type { WatchMessage } from "../../server/rpc/watch-queue.js";
import { watchStream, type WatchOptions } from "../../server/rpc/watch-stream.js";
import { WatcherSlots } from "../../server/rpc/watcher-slots.js";

/** A Watch call driven by hand: `next()` reads one message, `end()` cancels it as a client would. */
function open(bus: InvalidationBus, namespaces: string[], options: WatchOptions = {}, request = create(WatchRequestSchema, { cursors: namespaces.map((namespace) => ({ namespace })) })) {
  const controller = new AbortController();
  const ctx: CallContext = callContextOf(controller.signal);
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

  describe("for a writer (WatchRequest.writer_id)", () => {
    const ME = "writer-me-0123456789";
    const THEM = "writer-them-0123456789";
    let bus: InvalidationBus;
    const tagged = (namespace: string, key: string, writerId: string) => bus.publish({ kind: "set", namespace, keys: [key], origin: { writerId, writeSeq: 1n } });
    const watchAs = (writerId: string, namespaces: string[], options: WatchOptions = {}, after?: { streamId: string; afterSeq: bigint }) =>
      open(bus, namespaces, options, create(WatchRequestSchema, { writerId, cursors: namespaces.map((namespace) => ({ namespace, ...after })) }));
    const describeMessage = (m: WatchMessage) => [WatchEventKind[m.kind!], m.namespace, (m.keys ?? []).join(","), m.seq].filter((part) => part !== undefined && part !== "").join(" ");

    it("leaves out the writer's own SETs, then moves the cursor past them with a READY at the current seq instead of a heartbeat", async () => {
      bus = new InvalidationBus();
      const watch = watchAs(ME, ["a"], { heartbeatMs: 40 });
      expect(describeMessage(await watch.next())).toBe("READY a 0");
      tagged("a", "mine", ME);
      tagged("a", "theirs", THEM);
      bus.publish({ kind: "set", namespace: "a", keys: ["anonymous"] });
      tagged("a", "mine-again", ME);
      bus.publish({ kind: "delete", namespace: "a", keys: ["mine"] });
      tagged("a", "last", ME);
      const seen = [await watch.next(), await watch.next(), await watch.next(), await watch.next()].map(describeMessage);
      expect(seen).toEqual(["SET a theirs 2", "SET a anonymous 3", "DELETE a mine 5", "READY a 6"]);
      expect(describeMessage(await watch.next())).toBe("HEARTBEAT");
      await watch.end();
    });

    it("sends that READY within 100 ms on an idle stream, long before its heartbeat falls due", async () => {
      bus = new InvalidationBus();
      const watch = watchAs(ME, ["a"], { heartbeatMs: 60_000 });
      await watch.next();
      const pending = watch.next().then(describeMessage);
      await new Promise((resolve) => setTimeout(resolve, 20)); // the stream is waiting for its heartbeat now
      tagged("a", "mine", ME);
      const started = performance.now();
      const next = await Promise.race([pending, new Promise<string>((resolve) => setTimeout(() => resolve("nothing within 2 s"), 2000))]);
      expect(next).toBe("READY a 1");
      expect(performance.now() - started).toBeGreaterThanOrEqual(90); // coalesced, not one READY per left-out event
      await watch.end();
    });

    it("leaves them out of a replay too; the READY after it carries the current seq", async () => {
      bus = new InvalidationBus();
      bus.publish({ kind: "delete", namespace: "a", keys: ["before"] });
      tagged("a", "mine", ME);
      bus.publish({ kind: "delete", namespace: "a", keys: ["theirs"] });
      tagged("a", "mine-again", ME);
      const watch = watchAs(ME, ["a"], {}, { streamId: bus.streamId, afterSeq: 1n });
      expect([await watch.next(), await watch.next()].map(describeMessage)).toEqual(["DELETE a theirs 3", "READY a 4"]);
      await watch.end();
    });

    it("sends that READY within a heartbeat even while other namespaces keep the stream busy", async () => {
      bus = new InvalidationBus();
      const watch = watchAs(ME, ["quiet", "busy"], { heartbeatMs: 50 });
      await watch.read(2);
      tagged("quiet", "mine", ME);
      let published = 0;
      const busy = setInterval(() => bus.publish({ kind: "delete", namespace: "busy", keys: [`k${published++}`] }), 5);
      try {
        const seen: string[] = [];
        // Every wait for a message is cut short by the next "busy" event, so no heartbeat timer ever fires.
        while (!seen.includes("READY quiet 1") && seen.length < 400) seen.push(describeMessage(await watch.next()));
        expect(seen).toContain("READY quiet 1");
        expect(seen.every((m) => m === "READY quiet 1" || m.startsWith("DELETE busy"))).toBe(true);
      } finally {
        clearInterval(busy);
      }
      await watch.end();
    });

    it("and while a queue that never empties keeps it from waiting at all", async () => {
      bus = new InvalidationBus();
      const watch = watchAs(ME, ["quiet", "busy"], { heartbeatMs: 20, maxQueuedEvents: 1_000_000 });
      await watch.read(2);
      tagged("quiet", "mine", ME);
      let publishing = true;
      let published = 0;
      const publish = () => {
        for (let i = 0; i < 300; i++) bus.publish({ kind: "delete", namespace: "busy", keys: [`k${published++}`] });
        if (publishing) setImmediate(publish);
      };
      publish();
      try {
        const seen: string[] = [];
        while (!seen.includes("READY quiet 1") && seen.length < 100_000) seen.push(describeMessage(await watch.next()));
        expect(seen).toContain("READY quiet 1");
      } finally {
        publishing = false;
      }
      await watch.end();
    });

    it("leaves nothing out without a writer_id, nor another writer's SETs, and never tells a watcher who wrote, live or replayed (so that no one can learn a writer_id and write under it)", async () => {
      bus = new InvalidationBus();
      const anonymous = watchAs("", ["a"]);
      const other = watchAs(THEM, ["a"]);
      await anonymous.next();
      await other.next();
      tagged("a", "k", ME);
      const replayed = watchAs("", ["a"], {}, { streamId: bus.streamId, afterSeq: 0n });
      const seen = [await anonymous.next(), await other.next(), await replayed.next()];
      expect(seen.map(describeMessage)).toEqual(["SET a k 1", "SET a k 1", "SET a k 1"]);
      for (const message of seen) {
        expect(message.writerId ?? "").toBe("");
        expect(message.writeSeq ?? 0n).toBe(0n);
      }
      await anonymous.end();
      await other.end();
      await replayed.end();
    });

    it("refuses a writer_id under 16 bytes with INVALID_ARGUMENT, since a short one is likely shared by several clients", async () => {
      bus = new InvalidationBus();
      const refusal = await watchAs("orders-service", ["a"]).next().catch((err: unknown) => err);
      expect(refusal).toBeInstanceOf(InvalidArgumentError);
      expect((refusal as Error).message).toMatch(/^writer_id is shorter than 16 bytes: use a random id of one client process/);
      expect(bus.namespaceLogs).toBe(0);
      expect(await watchAs("x".repeat(16), ["a"]).next().then(describeMessage)).toBe("READY a 0");
    });

    it("refuses a writer_id over 64 bytes with INVALID_ARGUMENT", async () => {
      bus = new InvalidationBus();
      const refusal = await watchAs("x".repeat(65), ["a"]).next().catch((err: unknown) => err);
      expect(refusal).toBeInstanceOf(InvalidArgumentError);
      expect((refusal as Error).message).toBe("writer_id is longer than 64 bytes");
      expect(bus.namespaceLogs).toBe(0);
    });
  });
});
