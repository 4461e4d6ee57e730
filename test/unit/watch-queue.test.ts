import { describe, expect, it } from "vitest";
import { WatchEventKind } from "../../gen/tiercache/v1/cache_pb.js";
import { WatchQueue, type WatchMessage } from "../../server/rpc/watch-queue.js";

const event = (namespace: string, seq: number, keys: string[] = ["k"]): WatchMessage => ({ kind: WatchEventKind.DELETE, namespace, seq: BigInt(seq), keys });

/** A queue whose RESET/READY carry `seqOf(namespace)` at the moment they are sent. */
function queue(maxMessages: number, maxKeys = Infinity, seqOf: (namespace: string) => number = () => 0): WatchQueue {
  return new WatchQueue({
    maxMessages,
    maxKeys,
    resetOf: (namespace) => [
      { kind: WatchEventKind.RESET, namespace, seq: BigInt(seqOf(namespace)) },
      { kind: WatchEventKind.READY, namespace, seq: BigInt(seqOf(namespace)) },
    ],
  });
}

function drain(q: WatchQueue): string[] {
  const out: string[] = [];
  for (let m = q.shift(); m; m = q.shift()) out.push(`${WatchEventKind[m.kind!]} ${m.namespace} ${m.seq}`);
  expect(q.empty).toBe(true);
  return out;
}

describe("WatchQueue", () => {
  it("hands messages out in order", () => {
    const q = queue(10);
    q.push(event("a", 1));
    q.push(event("b", 1));
    q.push(event("a", 2));
    expect(drain(q)).toEqual(["DELETE a 1", "DELETE b 1", "DELETE a 2"]);
    expect(q.overflows).toBe(0);
  });

  it("replaces a backlog past its limit by RESET + READY per namespace in it, sent first; the RESET covers later events of its namespace", () => {
    const seqs = new Map([["a", 7], ["b", 9], ["c", 3]]);
    const q = queue(3, Infinity, (ns) => seqs.get(ns)!);
    q.push(event("a", 5));
    q.push(event("b", 8));
    q.push(event("a", 6));
    q.push(event("b", 9)); // the fourth: overflow
    expect(q.overflows).toBe(1);
    q.push(event("a", 7)); // covered by a's RESET: dropped
    q.push(event("c", 3)); // c had nothing dropped: delivered
    expect(drain(q)).toEqual(["RESET a 7", "READY a 7", "RESET b 9", "READY b 9", "DELETE c 3"]);
    q.push(event("a", 8)); // after a's RESET went out, a's events flow again
    expect(drain(q)).toEqual(["DELETE a 8"]);
  });

  it("counts keys too: a backlog of big batches overflows before its message count does", () => {
    const q = queue(1000, 100);
    q.push(event("a", 1, Array.from({ length: 60 }, (_, i) => `k${i}`)));
    expect(q.overflows).toBe(0);
    q.push(event("a", 2, Array.from({ length: 60 }, (_, i) => `k${i}`)));
    expect(q.overflows).toBe(1);
    expect(drain(q)).toEqual(["RESET a 0", "READY a 0"]);
  });

  it("a reader that never reads costs O(1) per event: the backlog is dropped once per limit's worth, not on every push", () => {
    const namespaces = 1000;
    const limit = 100;
    const q = queue(limit);
    const pushes = 200_000;
    for (let i = 0; i < pushes; i++) q.push(event(`ns${i % namespaces}`, i));
    // Each overflow scans at most `limit` messages and makes their namespaces owed; an owed namespace queues nothing more.
    expect(q.overflows).toBeLessThanOrEqual(Math.ceil(namespaces / limit));
    const out = drain(q);
    expect(out).toHaveLength(2 * namespaces);
    expect(new Set(out.filter((m) => m.startsWith("RESET")))).toHaveProperty("size", namespaces);
  });
});
