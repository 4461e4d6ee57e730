import { describe, expect, it } from "vitest";
import type { Change } from "../../server/engine/invalidation-bus.js";
import { parseMessage, encodeMessage, type ChannelMessage } from "../../server/tiers/invalidation-protocol.js";
import { InvalidationReceiver } from "../../server/tiers/invalidation-receiver.js";

const HB = 1_000;
const SETTLE = 1_900;
const change = (key: string): Change => ({ kind: "set", namespace: "ns", keys: [key] });

function message(from: string, seq: number, keys: string[] = [], extra: Partial<ChannelMessage> = {}): ChannelMessage {
  return { v: 1, from, seq, changes: keys.map(change), hb: HB, settle: SETTLE, ...extra };
}

/** A receiver at t=0 that has heard itself and peer "b" (at seq `bSeq`). */
function receiverWithPeer(bSeq = 0): InvalidationReceiver {
  const r = new InvalidationReceiver({ selfId: "me", heartbeatMs: HB }, 0);
  r.receive(message("me", 0), 0);
  r.receive(message("b", bSeq), 0);
  return r;
}

/** Runs the periodic check every tenth of a heartbeat (as the channel does) from `from` to `to`; the times at which it said to flush. */
function checks(r: InvalidationReceiver, from: number, to: number, hear?: (now: number) => void): number[] {
  const flushes: number[] = [];
  for (let now = from; now <= to; now += HB / 10) {
    hear?.(now);
    if (r.check(now) !== undefined) {
      flushes.push(now);
      r.flushed(now);
    }
  }
  return flushes;
}

describe("the invalidation protocol's wire format", () => {
  it("round-trips a message and refuses malformed or inconsistent ones", () => {
    const m = message("b", 7, ["x", "y"], { bye: true });
    expect(parseMessage(encodeMessage(m))).toEqual(m);
    for (const bad of [
      "not json",
      "null",
      JSON.stringify({ ...m, v: 2 }),
      JSON.stringify({ ...m, seq: -1 }),
      JSON.stringify({ ...m, seq: 1 }), // two changes cannot end at number 1
      JSON.stringify({ ...m, hb: 0 }),
      JSON.stringify({ ...m, changes: [{ kind: "boom", namespace: "ns", keys: [] }] }),
      JSON.stringify({ ...m, changes: [{ kind: "set", namespace: "ns", keys: [1] }] }),
      JSON.stringify({ ...m, bye: "yes" }),
      JSON.stringify({ from: "b", kind: "set", namespace: "ns", keys: ["x"] }), // the unnumbered format before version 1
    ]) {
      expect(parseMessage(bad), bad).toBeUndefined();
    }
  });

  it("carries a tag invalidation as a change of kind tags, its tags in keys", () => {
    const m: ChannelMessage = { v: 1, from: "a", seq: 3, changes: [{ kind: "tags", namespace: "ns", keys: ["org:7", "user:1"] }], hb: 1000, settle: 1500 };
    expect(parseMessage(encodeMessage(m))).toEqual(m);
  });
});

describe("InvalidationReceiver", () => {
  it("applies a sender's changes in order without flushing, and skips repeats", () => {
    const r = receiverWithPeer();
    expect(r.receive(message("b", 2, ["k1", "k2"]), 10)).toEqual({ flush: undefined, changes: [change("k1"), change("k2")] });
    expect(r.receive(message("b", 3, ["k3"]), 20)).toEqual({ flush: undefined, changes: [change("k3")] });
    expect(r.receive(message("b", 3, ["k3"]), 30)).toEqual({ flush: undefined, changes: [] }); // a retried send that arrived twice
    expect(r.receive(message("b", 4, ["k3", "k4"]), 40)).toEqual({ flush: undefined, changes: [change("k4")] });
    expect(r.receive(message("b", 4), 50)).toEqual({ flush: undefined, changes: [] });
  });

  it("flushes on a jump in a sender's numbers, whether a change or a heartbeat shows it, and still applies what came", () => {
    const r = receiverWithPeer(3);
    const jump = r.receive(message("b", 6, ["k6"]), 10);
    expect(jump.flush).toMatch(/changes 4\.\.5 of instance b never arrived/);
    expect(jump.changes).toEqual([change("k6")]);
    expect(r.receive(message("b", 9), 20).flush).toMatch(/changes 7\.\.9/);
    expect(r.receive(message("b", 9), 30).flush).toBeUndefined();
  });

  it("flushes on a new sender whose first message shows changes sent before it was heard", () => {
    const r = receiverWithPeer();
    expect(r.receive(message("c", 0), 10).flush).toBeUndefined(); // a fresh instance's first heartbeat
    expect(r.receive(message("d", 2, ["a", "b"]), 10).flush).toBeUndefined(); // its first two changes, both here
    expect(r.receive(message("e", 5), 10).flush).toMatch(/instance e is new/);
    expect(r.receive(message("f", 5, ["z"]), 10).flush).toMatch(/instance f is new/);
  });

  it("flushes when a known sender goes silent, then once a heartbeat while its last writes may still land, then stops", () => {
    const r = receiverWithPeer();
    const hearSelf = (now: number) => void r.receive(message("me", 0), now);
    const flushes = checks(r, 100, 10_000, hearSelf);
    // silent past 2 heartbeats: detected at the first check after 2000 ms; then every heartbeat up to 2000 + settle + 1 heartbeat
    expect(flushes).toEqual([2_100, 3_100, 4_100]);
    expect(flushes.at(-1)!).toBeLessThanOrEqual(2 * HB + SETTLE + HB);
  });

  it("forgets a sender that says goodbye, without flushing, and a long-silent one after the retention time", () => {
    const r = receiverWithPeer();
    expect(r.receive(message("b", 0, [], { bye: true }), 10).flush).toBeUndefined();
    expect(r.peers).toBe(0);
    expect(checks(r, 100, 5_000, (now) => void r.receive(message("me", 0), now))).toEqual([]);

    const short = new InvalidationReceiver({ selfId: "me", heartbeatMs: HB, peerRetentionMs: 5_000 }, 0);
    short.receive(message("c", 0), 0);
    checks(short, 100, 6_000, (now) => void short.receive(message("me", 0), now));
    expect(short.peers).toBe(0);
  });

  it("out of touch (nothing heard, not even itself) with others about: flushes each heartbeat, and once more when heard again", () => {
    const r = receiverWithPeer();
    const flushes = checks(r, 100, 6_000);
    expect(flushes[0]).toBe(2_100);
    for (let i = 1; i < flushes.length; i++) expect(flushes[i]! - flushes[i - 1]!).toBe(HB);
    expect(flushes.at(-1)).toBeGreaterThanOrEqual(5_000);
    expect(r.inTouch(6_000)).toBe(false);
    expect(r.receive(message("me", 0), 6_100).flush).toMatch(/heard again/);
    expect(r.inTouch(6_100)).toBe(true);
  });

  it("a lone instance out of touch keeps its copies (nobody else writes) and flushes once when heard again", () => {
    const r = new InvalidationReceiver({ selfId: "me", heartbeatMs: HB }, 0);
    r.receive(message("me", 0), 0);
    expect(checks(r, 100, 6_000)).toEqual([]);
    expect(r.receive(message("me", 0), 6_100).flush).toMatch(/heard again/);
  });

  it("an instance that hears the others but not itself (it cannot publish) is in touch and keeps its copies", () => {
    const r = receiverWithPeer();
    const flushes = checks(r, 100, 6_000, (now) => void r.receive(message("b", 0), now));
    expect(flushes).toEqual([]);
    expect(r.inTouch(6_000)).toBe(true);
  });
});

describe("an instance that cannot hear the channel does not take itself for alone", () => {
  it("flushes once a heartbeat when it never heard anything, not even its own messages", () => {
    const r = new InvalidationReceiver({ selfId: "me", heartbeatMs: HB }, 0);
    const flushes = checks(r, 0, 6_000);
    expect(flushes.length).toBeGreaterThanOrEqual(3);
    expect(flushes[0]).toBeLessThanOrEqual(2_200);
  });

  it("keeps the instances it knew while it hears nothing, however long that lasts", () => {
    const r = receiverWithPeer();
    const flushes = checks(r, 0, 15 * 60_000);
    expect(flushes.filter((t) => t > 11 * 60_000).length).toBeGreaterThan(100);
  });
});
