import { describe, expect, it } from "vitest";
import type { DescMethod } from "@bufbuild/protobuf";
import type { LeaseSessionRequest } from "../../gen/tiercache/v1/cache_pb.js";
import { CallSlots } from "../../server/rpc/call-slots.js";
import { leaseSession, type LeaseSessionCalls } from "../../server/rpc/lease-session.js";
import { callContextOf } from "../helpers/call-context.js";

/** Requests as a LeaseSession handler reads them: GetOrLease calls of keys `k0`, `k1`... */
async function* calls(count: number, idle: Promise<void>): AsyncIterable<LeaseSessionRequest> {
  for (let i = 0; i < count; i++) {
    yield { id: BigInt(i + 1), timeoutMs: 0, call: { case: "getOrLease", value: { namespace: "", key: `k${i}`, leaseMs: 1000, waitMs: 0 } } } as unknown as LeaseSessionRequest;
  }
  await idle; // the client keeps its side open without sending anything
}

describe("LeaseSession streams sharing CallSlots", () => {
  it("run no more calls at once than the server-wide bound, however many streams carry them, and an idle stream holds no slot", async () => {
    const slots = new CallSlots(2);
    let running = 0;
    let most = 0;
    const release: (() => void)[] = [];
    const ended: { method: string; code: number }[] = [];
    const handlers: LeaseSessionCalls = {
      getOrLease: async () => {
        running++;
        most = Math.max(most, running);
        await new Promise<void>((resolve) => release.push(resolve));
        running--;
        return {};
      },
      set: () => ({}),
      releaseLease: () => ({}),
    };
    let endIdle!: () => void;
    const idle = new Promise<void>((resolve) => (endIdle = resolve));
    const options = { maxInFlight: 8, maxCallMs: 10_000, mapError: () => ({ code: 13, details: "internal" }), slots, onCallEnd: (method: DescMethod, code: number) => ended.push({ method: method.name, code }) };
    const streams = [0, 1, 2].map(() => leaseSession(calls(3, idle), callContextOf(new AbortController().signal), handlers, options)[Symbol.asyncIterator]());
    const answered: string[] = [];
    const drain = streams.map(async (stream, s) => {
      for (let r = await stream.next(); !r.done; r = await stream.next()) if (r.value.result?.case === "getOrLease") answered.push(`${s}:${r.value.id}`);
    });
    for (let i = 0; i < 9; i++) {
      while (release.length === 0) await new Promise((resolve) => setImmediate(resolve));
      expect(running).toBeLessThanOrEqual(2);
      release.shift()!();
    }
    while (answered.length < 9) await new Promise((resolve) => setImmediate(resolve));
    expect(most).toBe(2);
    expect(slots.used).toBe(0); // the three streams are open and idle now
    expect(ended).toHaveLength(9);
    expect(ended.every((e) => e.method === "GetOrLease" && e.code === 0)).toBe(true);
    endIdle();
    await Promise.all(drain);
  });

  it("a call whose deadline passes while it waits for a slot is answered DEADLINE_EXCEEDED and never runs", async () => {
    const slots = new CallSlots(1);
    let release!: () => void;
    const ran: string[] = [];
    const handlers: LeaseSessionCalls = {
      getOrLease: async (request) => {
        ran.push(request.key);
        if (request.key === "blocker") await new Promise<void>((resolve) => (release = resolve));
        return {};
      },
      set: () => ({}),
      releaseLease: () => ({}),
    };
    const options = { maxInFlight: 8, maxCallMs: 10_000, mapError: () => ({ code: 13, details: "internal" }), slots };
    const one = (key: string, timeoutMs: number) =>
      (async function* () {
        yield { id: 1n, timeoutMs, call: { case: "getOrLease", value: { namespace: "", key, leaseMs: 1000, waitMs: 0 } } } as unknown as LeaseSessionRequest;
      })();
    const answers = async (stream: AsyncIterable<unknown>) => {
      const seen: string[] = [];
      for await (const response of stream) {
        const result = (response as { result?: { case?: string; value?: { code?: number } } }).result;
        if (result?.case !== "ready") seen.push(result?.case === "error" ? `error ${result.value?.code}` : String(result?.case));
      }
      return seen;
    };
    const first = answers(leaseSession(one("blocker", 0), callContextOf(new AbortController().signal), handlers, options));
    while (ran.length === 0) await new Promise((resolve) => setImmediate(resolve));
    const second = answers(leaseSession(one("late", 30), callContextOf(new AbortController().signal), handlers, options));
    await new Promise((resolve) => setTimeout(resolve, 80));
    release();
    expect(await first).toEqual(["getOrLease"]);
    expect(await second).toEqual(["error 4"]);
    expect(ran).toEqual(["blocker"]);
    expect(slots.used).toBe(0);
  });

  it("an answer nobody has read yet keeps its slot (unread answers are bounded server-wide too), until it is read or the stream is over", async () => {
    const slots = new CallSlots(1);
    const ran: string[] = [];
    const handlers: LeaseSessionCalls = { getOrLease: (request) => (ran.push(request.key), {}), set: () => ({}), releaseLease: () => ({}) };
    const closing = new AbortController();
    const options = { maxInFlight: 8, maxCallMs: 10_000, mapError: () => ({ code: 13, details: "internal" }), slots, closing: closing.signal };
    const one = (key: string) =>
      (async function* () {
        yield { id: 1n, timeoutMs: 0, call: { case: "getOrLease", value: { namespace: "", key, leaseMs: 1000, waitMs: 0 } } } as unknown as LeaseSessionRequest;
        await new Promise(() => {}); // stays open
      })();
    const slow = leaseSession(one("a"), callContextOf(new AbortController().signal), handlers, options)[Symbol.asyncIterator]();
    expect((await slow.next()).value?.result?.case).toBe("ready");
    // a's answer is handed over, but the stream has not asked for more (as when grpc-js waits for the client to drain it).
    expect((await slow.next()).value?.result?.case).toBe("getOrLease");
    const fast = leaseSession(one("b"), callContextOf(new AbortController().signal), handlers, options)[Symbol.asyncIterator]();
    expect((await fast.next()).value?.result?.case).toBe("ready");
    const fastAnswer = fast.next();
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toEqual(["a"]); // a's answer is not written yet: it holds the only slot
    const slowEnd = slow.next(); // written: its slot goes to b
    expect((await fastAnswer).value?.result?.case).toBe("getOrLease");
    expect(ran).toEqual(["a", "b"]);
    closing.abort(); // as a draining server: both streams end once their answers are written
    expect((await slowEnd).done).toBe(true);
    expect((await fast.next()).done).toBe(true);
    expect(slots.used).toBe(0);
  });
});
