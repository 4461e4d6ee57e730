import { EventEmitter } from "node:events";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Change } from "../../server/engine/invalidation-bus.js";
import { silentLogger } from "../../server/logger.js";
import { firstSeq, parseMessage, type ChannelMessage } from "../../server/tiers/invalidation-protocol.js";
import type { RedisClient } from "../../server/tiers/redis-connection.js";
import { RedisInvalidationChannel } from "../../server/tiers/redis-invalidation.js";

/** A channel whose subscription never connects, and whose own publishes the test records. */
function channel() {
  const sent: ChannelMessage[] = [];
  const subscriber = Object.assign(new EventEmitter(), { options: {}, disconnect: () => {} }) as unknown as RedisClient;
  const send = (_name: string, text: string) => {
    sent.push(parseMessage(text)!);
    return Promise.resolve(1);
  };
  const c = new RedisInvalidationChannel(subscriber, send, { keyPrefix: "t", logger: silentLogger, handler: { apply: () => {}, resync: () => {} }, attemptTimeoutMs: 500, settleMs: 1_900, startTimeoutMs: 100 });
  return { channel: c, sent };
}

/** Every change number the sent messages carried, in order. */
const numbers = (messages: ChannelMessage[]) => messages.flatMap((m) => m.changes.map((_, i) => firstSeq(m) + i));

describe("a fenced write's announcement (RedisInvalidationChannel.announceWithWrite)", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it("replaces the engine's publish of the same change when the script published it", async () => {
    const { channel: c, sent } = channel();
    const change: Change = { kind: "set", namespace: "ns", keys: ["k"] };
    const announcement = c.announceWithWrite(change)!;
    expect(announcement.channel).toBe("t:invalidations");
    expect(parseMessage(announcement.text)).toMatchObject({ seq: 1, changes: [change] });
    announcement.settle(true, false);
    c.publish(change); // the engine, once the write settled
    await vi.advanceTimersByTimeAsync(10);
    expect(sent).toEqual([]);
    c.publish({ ...change }); // another change with the same content is a change of its own
    await vi.advanceTimersByTimeAsync(10);
    expect(numbers(sent)).toEqual([2]);
  });

  it("announces the change again after the write ends when its message went out before (a retry of the write may land after it)", async () => {
    const { channel: c, sent } = channel();
    const change: Change = { kind: "set", namespace: "ns", keys: ["k"] };
    const announcement = c.announceWithWrite(change)!;
    await vi.advanceTimersByTimeAsync(600); // the first attempt timed out; the guard retries the write
    expect(numbers(sent)).toEqual([1]);
    announcement.settle(true, true); // the retry stored the value
    c.publish(change);
    await vi.advanceTimersByTimeAsync(10);
    expect(numbers(sent)).toEqual([1, 2]);
    expect(sent[1]!.changes).toEqual([change]);
  });

  it("announces the change again after the write ends when the write was sent more than once (its first message may precede the attempt that took effect)", async () => {
    const { channel: c, sent } = channel();
    const change: Change = { kind: "set", namespace: "ns", keys: ["k"] };
    const announcement = c.announceWithWrite(change)!;
    await vi.advanceTimersByTimeAsync(100); // attempt 1 ran the script (published 1) but its answer was lost; attempt 2 stored the value
    announcement.settle(true, true);
    c.publish(change);
    await vi.advanceTimersByTimeAsync(10);
    expect(numbers(sent)).toEqual([2]);
    expect(sent[0]!.changes).toEqual([change]);
  });
});
