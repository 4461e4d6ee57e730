import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { silentLogger } from "../../server/logger.js";
import { firstSeq, parseMessage, type ChannelMessage } from "../../server/tiers/invalidation-protocol.js";
import { InvalidationPublisher, type InvalidationPublisherOptions } from "../../server/tiers/invalidation-publisher.js";

/** A send function whose outcome the test decides: "ok", "fail" (rejects) or "hang" (never settles). */
function fakeRedis() {
  const accepted: ChannelMessage[] = [];
  const state = { mode: "ok" as "ok" | "fail" | "hang", attempts: 0 };
  const send = (text: string) => {
    state.attempts++;
    if (state.mode === "fail") return Promise.reject(new Error("Connection is closed."));
    if (state.mode === "hang") return new Promise<never>(() => {});
    accepted.push(parseMessage(text)!);
    return Promise.resolve(1);
  };
  return { accepted, state, send };
}

function publisher(send: (text: string) => Promise<unknown>, options: Partial<InvalidationPublisherOptions> = {}) {
  return new InvalidationPublisher({ senderId: "me", heartbeatMs: 1_000, settleMs: 1_900, attemptTimeoutMs: 500, send, logger: silentLogger, ...options });
}

const set = (key: string) => ({ kind: "set" as const, namespace: "ns", keys: [key] });
/** Every change number the accepted messages carried, in order of arrival. */
const numbers = (messages: ChannelMessage[]) => messages.flatMap((m) => m.changes.map((_, i) => firstSeq(m) + i));

describe("InvalidationPublisher", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it("numbers changes and publishes them in order, batched, and a heartbeat with the last number when idle", async () => {
    const redis = fakeRedis();
    const p = publisher(redis.send, { maxMessageKeys: 2 });
    for (const key of ["a", "b", "c", "d", "e"]) p.enqueue(set(key));
    await vi.advanceTimersByTimeAsync(10);
    expect(numbers(redis.accepted)).toEqual([1, 2, 3, 4, 5]);
    expect(redis.accepted.map((m) => m.changes.length)).toEqual([1, 2, 2]); // the first went alone, the rest queued behind it
    p.heartbeat();
    await vi.advanceTimersByTimeAsync(10);
    expect(redis.accepted.at(-1)).toMatchObject({ from: "me", seq: 5, changes: [], hb: 1_000, settle: 1_900 });
    expect(p.stats()).toMatchObject({ accepted: 4, failedSends: 0, dropped: 0, queued: 0 });
  });

  it("retries a failed or timed-out send, in order, and at once when kicked", async () => {
    const redis = fakeRedis();
    const p = publisher(redis.send, { retryBaseMs: 200, retryMaxMs: 5_000, maxQueueAgeMs: 60_000 });
    redis.state.mode = "hang";
    p.enqueue(set("a"));
    await vi.advanceTimersByTimeAsync(600); // timed out after 500 ms
    redis.state.mode = "fail";
    p.enqueue(set("b"));
    await vi.advanceTimersByTimeAsync(2_000);
    expect(redis.accepted).toEqual([]);
    expect(p.stats().failedSends).toBeGreaterThanOrEqual(3);
    expect(p.lastAcceptedAt).toBeUndefined();
    p.heartbeat(); // a send is pending: no heartbeat jumps the queue
    redis.state.mode = "ok";
    const attempts = redis.state.attempts;
    p.kick();
    await vi.advanceTimersByTimeAsync(1);
    expect(redis.state.attempts).toBe(attempts + 1);
    expect(numbers(redis.accepted)).toEqual([1, 2]);
    expect(redis.accepted.every((m) => m.changes.length > 0)).toBe(true);
    expect(p.lastAcceptedAt).toBeGreaterThan(performance.now() - 10);
  });

  it("drops a full queue, counting it, so that the next message shows the jump", async () => {
    const redis = fakeRedis();
    const p = publisher(redis.send, { maxQueuedChanges: 3, maxQueueAgeMs: 60_000 });
    redis.state.mode = "fail";
    for (const key of ["a", "b", "c", "d", "e"]) p.enqueue(set(key));
    expect(p.stats()).toMatchObject({ dropped: 3, queued: 2 });
    redis.state.mode = "ok";
    p.kick();
    await vi.advanceTimersByTimeAsync(10);
    expect(numbers(redis.accepted)).toEqual([4, 5]);
    expect(firstSeq(redis.accepted[0]!)).toBe(4); // a receiver that had nothing after 0 sees 1..3 missing
  });

  it("drops changes that waited longer than allowed; a heartbeat then carries the spent numbers", async () => {
    const redis = fakeRedis();
    const p = publisher(redis.send, { maxQueueAgeMs: 1_000, retryBaseMs: 100, retryMaxMs: 100 });
    redis.state.mode = "fail";
    p.enqueue(set("a"));
    p.enqueue(set("b"));
    await vi.advanceTimersByTimeAsync(1_500);
    expect(p.stats()).toMatchObject({ dropped: 2, queued: 0 });
    redis.state.mode = "ok";
    p.heartbeat();
    await vi.advanceTimersByTimeAsync(10);
    expect(redis.accepted).toEqual([expect.objectContaining({ seq: 2, changes: [] })]);
  });

  it("on close, publishes what waits, then says goodbye; nothing is queued afterwards", async () => {
    const redis = fakeRedis();
    const p = publisher(redis.send);
    p.enqueue(set("a"));
    const closed = p.close(1_000);
    await vi.advanceTimersByTimeAsync(50);
    await closed;
    expect(redis.accepted.map((m) => [m.seq, m.changes.length, m.bye ?? false])).toEqual([
      [1, 1, false],
      [1, 0, true],
    ]);
    p.enqueue(set("b"));
    p.heartbeat();
    await vi.advanceTimersByTimeAsync(50);
    expect(redis.accepted).toHaveLength(2);
  });

  it("does not say goodbye when it could not publish what waited (receivers must notice its silence instead)", async () => {
    const redis = fakeRedis();
    const p = publisher(redis.send, { maxQueueAgeMs: 60_000 });
    redis.state.mode = "fail";
    p.enqueue(set("a"));
    const closed = p.close(300);
    await vi.advanceTimersByTimeAsync(400);
    await closed;
    redis.state.mode = "ok";
    await vi.advanceTimersByTimeAsync(2_000);
    expect(redis.accepted).toEqual([]);
  });

  describe("a change its writer publishes (reserve)", () => {
    it("is numbered in turn; nothing else goes out until it settles, and once published it is never sent again", async () => {
      const redis = fakeRedis();
      const p = publisher(redis.send);
      p.enqueue(set("a"));
      expect(p.reserve(set("x"))).toBeUndefined(); // a send is under way
      await vi.advanceTimersByTimeAsync(10);
      const reservation = p.reserve(set("b"))!;
      expect(parseMessage(reservation.text)).toMatchObject({ from: "me", seq: 2, changes: [set("b")] });
      expect(p.reserve(set("x"))).toBeUndefined(); // one at a time
      p.enqueue(set("c"));
      p.heartbeat();
      await vi.advanceTimersByTimeAsync(100);
      expect(numbers(redis.accepted)).toEqual([1]); // 3 (and any heartbeat, which would say 3) waits for 2
      redis.accepted.push(parseMessage(reservation.text)!); // the writer's script published it
      reservation.settle(true);
      reservation.settle(false); // a second settle changes nothing
      await vi.advanceTimersByTimeAsync(10);
      expect(numbers(redis.accepted)).toEqual([1, 2, 3]);
      expect(p.stats()).toMatchObject({ accepted: 3, queued: 0 });
      expect(p.lastSeq).toBe(3);
    });

    it("when its publication is uncertain, is sent here first, before what was queued behind it", async () => {
      const redis = fakeRedis();
      const p = publisher(redis.send, { maxMessageKeys: 1 });
      const reservation = p.reserve(set("a"))!;
      p.enqueue(set("b"));
      await vi.advanceTimersByTimeAsync(100);
      expect(redis.accepted).toEqual([]);
      reservation.settle(false);
      await vi.advanceTimersByTimeAsync(10);
      expect(numbers(redis.accepted)).toEqual([1, 2]);
      expect(redis.accepted[0]!.changes).toEqual([set("a")]);
    });

    it("is sent here when it has not settled within the attempt timeout (a write stuck on one node), and a late settle changes nothing", async () => {
      const redis = fakeRedis();
      const p = publisher(redis.send); // attemptTimeoutMs 500
      const reservation = p.reserve(set("a"))!;
      p.enqueue(set("b"));
      await vi.advanceTimersByTimeAsync(490);
      expect(redis.accepted).toEqual([]);
      await vi.advanceTimersByTimeAsync(20);
      expect(numbers(redis.accepted)).toEqual([1, 2]);
      reservation.settle(true);
      await vi.advanceTimersByTimeAsync(10);
      expect(p.stats()).toMatchObject({ accepted: redis.accepted.length, dropped: 0, queued: 0 });
    });

    it("does not count the write's own time against the queue's age limit", async () => {
      const redis = fakeRedis();
      const p = publisher(redis.send, { attemptTimeoutMs: 5_000, maxQueueAgeMs: 1_000 });
      const reservation = p.reserve(set("a"))!;
      await vi.advanceTimersByTimeAsync(1_600); // the write's attempts and retries
      reservation.settle(false);
      await vi.advanceTimersByTimeAsync(10);
      expect(numbers(redis.accepted)).toEqual([1]);
      expect(p.stats()).toMatchObject({ dropped: 0 });
    });

    it("is refused while sends fail, and close waits for it", async () => {
      const redis = fakeRedis();
      const p = publisher(redis.send, { retryBaseMs: 1_000, maxQueueAgeMs: 60_000 });
      redis.state.mode = "fail";
      p.enqueue(set("a"));
      await vi.advanceTimersByTimeAsync(10);
      expect(p.reserve(set("b"))).toBeUndefined(); // failing (and "a" still waits)
      redis.state.mode = "ok";
      p.kick();
      await vi.advanceTimersByTimeAsync(10);
      expect(numbers(redis.accepted)).toEqual([1]);
      const reservation = p.reserve(set("b"))!;
      let closed = false;
      void p.close(1_000).then(() => (closed = true));
      await vi.advanceTimersByTimeAsync(100);
      expect(closed).toBe(false);
      expect(redis.accepted.some((m) => m.bye)).toBe(false);
      reservation.settle(false);
      await vi.advanceTimersByTimeAsync(100);
      expect(closed).toBe(true);
      expect(numbers(redis.accepted)).toEqual([1, 2]);
      expect(redis.accepted.at(-1)).toMatchObject({ bye: true, seq: 2 });
    });
  });
});
