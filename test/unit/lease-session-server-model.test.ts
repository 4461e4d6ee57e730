import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { LeaseSessionRequest } from "../../gen/tiercache/v1/cache_pb.js";
import { CallSlots } from "../../server/rpc/call-slots.js";
import { leaseSession, type LeaseSessionCalls } from "../../server/rpc/lease-session.js";
import { callContextOf } from "../helpers/call-context.js";

class Requests implements AsyncIterable<LeaseSessionRequest> {
  items: LeaseSessionRequest[] = [];
  ended = false;
  error: unknown;
  wake: (() => void) | undefined;
  push(r: LeaseSessionRequest) { this.items.push(r); this.notify(); }
  end() { this.ended = true; this.notify(); }
  fail(e: unknown) { this.error = e; this.notify(); }
  notify() { const w = this.wake; this.wake = undefined; w?.(); }
  async *[Symbol.asyncIterator]() {
    for (;;) {
      if (this.error) throw this.error;
      const item = this.items.shift();
      if (item) { yield item; continue; }
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

const flush = async () => { for (let i = 0; i < 10; i++) await Promise.resolve(); await vi.advanceTimersByTimeAsync(0); };

type Cmd =
  | { t: "send"; s: number; timeoutMs: number; set: boolean }
  | { t: "resolve"; h: number }
  | { t: "time"; ms: number }
  | { t: "pull"; s: number; n: number }
  | { t: "cancel"; s: number }
  | { t: "drain" }
  | { t: "endReq"; s: number };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ t: fc.constant("send" as const), s: fc.nat(2), timeoutMs: fc.integer({ min: 1, max: 60 }), set: fc.boolean() }) },
  { weight: 6, arbitrary: fc.record({ t: fc.constant("resolve" as const), h: fc.nat(30) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("time" as const), ms: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 8, arbitrary: fc.record({ t: fc.constant("pull" as const), s: fc.nat(2), n: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("cancel" as const), s: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.constant({ t: "drain" as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("endReq" as const), s: fc.nat(2) }) },
);

beforeEach(() => void vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] }));
afterEach(() => void vi.useRealTimers());

describe("server LeaseSession slots and places under random interleavings (fast-check)", () => {
  const stats = { runs: 0, sent: 0, answered: 0, maxUsed: 0 };
  afterEach(() => console.log("fast-check stats", JSON.stringify(stats)));
  it("never exceeds the bounds, answers every call it read exactly once (unless the stream is cancelled), and gives every slot back", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 30, maxLength: 150 }), async (cmds) => {
        const slots = new CallSlots(3);
        let peak = 0;
        const MAX = 2;
        const pendingHandlers: (() => void)[] = [];
        let liveHandlers = 0;
        const handler = async (): Promise<object> => {
          liveHandlers++;
          // ignores cancellation on purpose: stops only when resolved
          await new Promise<void>((r) => pendingHandlers.push(r));
          liveHandlers--;
          return {};
        };
        const calls: LeaseSessionCalls = { getOrLease: handler as never, set: handler as never, releaseLease: handler as never };
        const closing = new AbortController();
        const streams = [0, 1, 2].map(() => {
          const requests = new Requests();
          const abort = new AbortController();
          const gen = leaseSession(requests, callContextOf(abort.signal), calls, { maxInFlight: MAX, maxCallMs: 1000, mapError: () => ({ code: 13, details: "x" }), slots, closing: closing.signal })[Symbol.asyncIterator]();
          return { requests, abort, gen, sent: 0, answered: new Map<bigint, number>(), done: false, cancelled: false, nextId: 1n, pulling: false };
        });
        // READY
        for (const s of streams) expect((await s.gen.next()).value?.result?.case).toBe("ready");
        const pull = async (s: (typeof streams)[number]) => {
          if (s.done || s.pulling) return;
          s.pulling = true;
          void s.gen.next().then((r) => {
            s.pulling = false;
            if (r.done) s.done = true;
            else s.answered.set(r.value.id!, (s.answered.get(r.value.id!) ?? 0) + 1);
          }, () => { s.pulling = false; s.done = true; });
          await flush();
        };
        for (const c of cmds) {
          if (c.t === "send") {
            const s = streams[c.s]!;
            // a well-behaved client: never more than MAX unanswered
            if (s.cancelled || s.requests.ended || s.sent - s.answered.size >= MAX) continue;
            const id = s.nextId++;
            s.sent++;
            s.requests.push({ id, timeoutMs: c.timeoutMs, call: c.set ? { case: "set", value: { namespace: "n", key: "k" } } : { case: "getOrLease", value: { namespace: "n", key: "k" } } } as unknown as LeaseSessionRequest);
          } else if (c.t === "resolve") pendingHandlers.splice(c.h % Math.max(1, pendingHandlers.length), 1)[0]?.();
          else if (c.t === "time") await vi.advanceTimersByTimeAsync(c.ms);
          else if (c.t === "pull") for (let i = 0; i < c.n; i++) await pull(streams[c.s]!);
          else if (c.t === "cancel") {
            const s = streams[c.s]!;
            if (s.done) continue;
            s.cancelled = true;
            s.abort.abort(new Error("cancelled"));
            s.requests.fail(new Error("cancelled"));
          } else if (c.t === "drain") closing.abort();
          else if (c.t === "endReq") streams[c.s]!.requests.end();
          await flush();
          peak = Math.max(peak, slots.used);
          expect(slots.used).toBeLessThanOrEqual(slots.max);
          expect(slots.used).toBeGreaterThanOrEqual(0);
        }
        // Wind down: the client ends its side, time passes (deadlines), handlers stop, answers are all read.
        for (const s of streams) s.requests.end();
        await vi.advanceTimersByTimeAsync(2000);
        for (let round = 0; round < 50 && streams.some((s) => !s.done); round++) {
          pendingHandlers.splice(0).forEach((r) => r());
          for (const s of streams) await pull(s);
          await vi.advanceTimersByTimeAsync(10);
        }
        pendingHandlers.splice(0).forEach((r) => r());
        await flush();
        stats.runs++;
        for (const s of streams) { stats.sent += s.sent; stats.answered += s.answered.size; }
        stats.maxUsed = Math.max(stats.maxUsed, peak);
        expect(streams.map((s) => s.done)).toEqual([true, true, true]);
        expect(liveHandlers).toBe(0);
        expect(slots.used).toBe(0);
        for (const s of streams) {
          for (const count of s.answered.values()) expect(count).toBe(1);
          if (!s.cancelled && !closing.signal.aborted) expect(s.answered.size).toBe(s.sent);
        }
      }),
      { numRuns: 500 },
    );
  }, 120_000);
});
