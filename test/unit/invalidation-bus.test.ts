import { describe, expect, it } from "vitest";
import { eventBytes, namespaceLogBytes } from "../../server/engine/history-size.js";
import { InvalidationBus, type WatchEvent } from "../../server/engine/invalidation-bus.js";

const del = (namespace: string, ...keys: string[]) => ({ kind: "delete" as const, namespace, keys });

/** Subscribes from a cursor and returns what it replays: the seqs, or "reset". */
function resume(bus: InvalidationBus, namespace: string, afterSeq: number, streamId: string = bus.streamId): number[] | "reset" {
  const { replay, subscription } = bus.subscribe(namespace, { streamId, afterSeq }, () => {});
  subscription.close();
  return replay.length === 1 && replay[0]!.kind === "reset" ? "reset" : replay.map((e) => e.seq);
}

describe("InvalidationBus: replay and RESET", () => {
  it("replays exactly what a cursor missed, live events follow, and other numberings or future cursors get RESET", () => {
    const bus = new InvalidationBus();
    const first = bus.publish(del("a", "k1")).seq;
    bus.publish(del("a", "k2"));
    bus.publish(del("b", "x"));
    bus.publish(del("a", "k3"));
    expect(resume(bus, "a", first)).toEqual([first + 1, first + 2]); // each namespace numbers its own changes, without gaps
    expect(resume(bus, "a", bus.currentSeq("a"))).toEqual([]);
    expect(resume(bus, "a", first, "another-process")).toBe("reset");
    expect(resume(bus, "a", bus.currentSeq("a") + 1)).toBe("reset");

    const live: WatchEvent[] = [];
    const { subscription } = bus.subscribe("a", { streamId: "", afterSeq: 0 }, (e) => live.push(e));
    bus.publish(del("a", "k4"));
    bus.publish(del("b", "y"));
    subscription.close();
    bus.publish(del("a", "k5"));
    expect(live.map((e) => e.kind === "reset" ? "reset" : e.keys.join())).toEqual(["k4"]);
  });

  it("resetAll renews the numbering: every cursor gets RESET, live watchers are told", () => {
    const bus = new InvalidationBus();
    const seq = bus.publish(del("a", "k")).seq;
    const live: WatchEvent[] = [];
    bus.subscribe("a", { streamId: "", afterSeq: 0 }, (e) => live.push(e));
    const before = bus.streamId;
    bus.resetAll();
    expect(bus.streamId).not.toBe(before);
    expect(live).toEqual([{ kind: "reset", namespace: "a", seq }]);
    expect(resume(bus, "a", seq, before)).toBe("reset");
    expect(bus.retainedBytes).toBe(0);
  });

  it("does not replay more than maxReplay changes: RESET instead", () => {
    const bus = new InvalidationBus();
    const start = bus.currentSeq("a");
    for (let i = 0; i < 10; i++) bus.publish(del("a", `k${i}`));
    const { replay } = bus.subscribe("a", { streamId: bus.streamId, afterSeq: start }, () => {}, 5);
    expect(replay).toEqual([{ kind: "reset", namespace: "a", seq: start + 10 }]);
  });
});

describe("InvalidationBus: one bound on the history of all namespaces", () => {
  it("never holds more than maxRetainedBytes, trimming the oldest events of any namespace first", () => {
    const bound = 64 * 1024;
    const bus = new InvalidationBus({ maxRetainedBytes: bound });
    const early = bus.publish(del("quiet", "q1")).seq;
    let most = 0;
    for (let i = 0; i < 20_000; i++) {
      bus.publish(del(`busy-${i % 2000}`, `never-existed-${i}`, `also-${i}`));
      most = Math.max(most, bus.retainedBytes);
    }
    expect(most).toBeLessThanOrEqual(bound);
    expect(most).toBeGreaterThan(bound - eventBytes(["never-existed-00000", "also-00000"]) - namespaceLogBytes("busy-0000") - 1);
    // The quiet namespace's event was the oldest: it went first, so its cursor gets RESET.
    expect(resume(bus, "quiet", early - 1)).toBe("reset");
    // A recent cursor of a busy namespace still resumes.
    const seq = bus.publish(del("busy-7", "a")).seq;
    bus.publish(del("busy-7", "b"));
    expect(resume(bus, "busy-7", seq)).toEqual([seq + 1]);
  });

  it("counts what it keeps: events, keys at two bytes a character, and the logs of unwatched namespaces", () => {
    const bus = new InvalidationBus();
    bus.publish(del("ns", "abc", "de"));
    bus.publish({ kind: "clear", namespace: "ns", keys: [] });
    expect(bus.retainedBytes).toBe(namespaceLogBytes("ns") + eventBytes(["abc", "de"]) + eventBytes([]));
    expect(eventBytes(["abc", "de"]) - eventBytes([])).toBe(2 * 32 + 2 * 5); // KEY_OVERHEAD_BYTES each, plus UTF-16
    const watched = bus.subscribe("ns", { streamId: "", afterSeq: 0 }, () => {});
    expect(bus.retainedBytes).toBe(eventBytes(["abc", "de"]) + eventBytes([])); // a watched log is its watchers' cost
    watched.subscription.close();
    bus.maxRetainedBytes = 0;
    expect(bus.retainedBytes).toBe(0);
    expect(bus.namespaceLogs).toBe(0);
  });

  it("an event bigger than the whole bound is delivered but not kept", () => {
    const bus = new InvalidationBus({ maxRetainedBytes: 1000 });
    const got: WatchEvent[] = [];
    const { subscription } = bus.subscribe("a", { streamId: "", afterSeq: 0 }, (e) => got.push(e));
    const before = bus.currentSeq("a");
    bus.publish(del("a", "x".repeat(2000)));
    expect(got).toHaveLength(1);
    expect(bus.retainedBytes).toBe(0);
    expect(resume(bus, "a", before)).toBe("reset");
    subscription.close();
  });
});

describe("InvalidationBus: namespace logs", () => {
  it("frees the log of a namespace nobody watches once it holds no history", () => {
    const bus = new InvalidationBus();
    const subscriptions = Array.from({ length: 5000 }, (_, i) => bus.subscribe(`w${i}`, { streamId: "", afterSeq: 0 }, () => {}).subscription);
    expect(bus.namespaceLogs).toBe(5000);
    for (const s of subscriptions) s.close();
    expect(bus.namespaceLogs).toBe(0);
    expect(bus.retainedBytes).toBe(0);

    // With history, the log stays (a cursor may resume) until the bound trims its last event.
    bus.publish(del("kept", "k"));
    const { subscription } = bus.subscribe("kept", { streamId: "", afterSeq: 0 }, () => {});
    subscription.close();
    subscription.close(); // twice is harmless
    expect(bus.namespaceLogs).toBe(1);
    bus.maxRetainedBytes = 0;
    expect(bus.namespaceLogs).toBe(0);
  });

  it("a cursor from a freed log gets RESET, never the events of the namespace's next log", () => {
    const bus = new InvalidationBus({ maxRetainedBytes: 10_000 });
    const seqs = [1, 2, 3, 4, 5].map((i) => bus.publish(del("a", `old${i}`)).seq);
    const cursor = seqs[2]!; // saw old1..old3
    for (let i = 0; i < 500; i++) bus.publish(del(`other-${i}`, "o")); // trims all of "a": its log is freed
    expect(resume(bus, "a", cursor)).toBe("reset");
    for (let i = 0; i < 5; i++) bus.publish(del("a", `new${i}`)); // a new log of "a", with enough events to cover the cursor's number
    expect(bus.currentSeq("a")).toBeGreaterThan(cursor);
    expect(resume(bus, "a", cursor)).toBe("reset");
  });
});
