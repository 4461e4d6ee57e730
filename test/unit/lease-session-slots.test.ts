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

/** What a stream answered, one line per answer: the case, or `error <code> <notRun>`. */
async function answersOf(stream: AsyncIterable<unknown>): Promise<string[]> {
  const seen: string[] = [];
  for await (const response of stream) {
    const result = (response as { result?: { case?: string; value?: { code?: number; notRun?: boolean } } }).result;
    if (result?.case !== "ready") seen.push(result?.case === "error" ? `error ${result.value?.code} ${result.value?.notRun}` : String(result?.case));
  }
  return seen;
}

describe("LeaseSession streams sharing CallSlots", () => {
  it("run no more calls at once than the server-wide bound, however many streams carry them; a call read when all are taken is answered RESOURCE_EXHAUSTED, not_run, without running or waiting", async () => {
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
    const answers = [0, 1, 2].map(() => answersOf(leaseSession(calls(3, idle), callContextOf(new AbortController().signal), handlers, options)));
    while (ended.length < 7) await new Promise((resolve) => setImmediate(resolve));
    expect(running).toBe(2); // seven were refused at once, while two run
    expect(ended.every((e) => e.method === "GetOrLease" && e.code === 8)).toBe(true);
    release.splice(0).forEach((r) => r());
    while (ended.length < 9) await new Promise((resolve) => setImmediate(resolve));
    endIdle();
    const all = (await Promise.all(answers)).flat();
    expect(most).toBe(2);
    expect(all.filter((a) => a === "getOrLease")).toHaveLength(2);
    expect(all.filter((a) => a === "error 8 true")).toHaveLength(7);
    expect(slots.used).toBe(0);
  });

  it("an idle stream holds no slot, and a slot freed is taken by the next call read", async () => {
    const slots = new CallSlots(1);
    const ran: string[] = [];
    const handlers: LeaseSessionCalls = { getOrLease: (request) => (ran.push(request.key), {}), set: () => ({}), releaseLease: () => ({}) };
    const options = { maxInFlight: 8, maxCallMs: 10_000, mapError: () => ({ code: 13, details: "internal" }), slots };
    let endIdle!: () => void;
    const idle = new Promise<void>((resolve) => (endIdle = resolve));
    const first = leaseSession(calls(1, idle), callContextOf(new AbortController().signal), handlers, options)[Symbol.asyncIterator]();
    expect((await first.next()).value?.result?.case).toBe("ready");
    expect((await first.next()).value?.result?.case).toBe("getOrLease");
    const secondEnds = answersOf(leaseSession(calls(1, idle), callContextOf(new AbortController().signal), handlers, options));
    const firstEnds = answersOf({ [Symbol.asyncIterator]: () => first });
    endIdle();
    expect(await secondEnds).toEqual(["getOrLease"]);
    expect(await firstEnds).toEqual([]);
    expect(ran).toEqual(["k0", "k0"]);
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
    const refused = leaseSession(one("b"), callContextOf(new AbortController().signal), handlers, options)[Symbol.asyncIterator]();
    expect((await refused.next()).value?.result?.case).toBe("ready");
    const answer = (await refused.next()).value?.result;
    expect(answer?.case === "error" && answer.value).toMatchObject({ code: 8, notRun: true });
    expect(ran).toEqual(["a"]); // a's answer is not written yet: it holds the only slot
    const slowEnd = slow.next(); // written: its slot is free again
    const accepted = leaseSession(one("c"), callContextOf(new AbortController().signal), handlers, options)[Symbol.asyncIterator]();
    expect((await accepted.next()).value?.result?.case).toBe("ready");
    expect((await accepted.next()).value?.result?.case).toBe("getOrLease");
    expect(ran).toEqual(["a", "c"]);
    closing.abort(); // as a draining server: each stream says so, and ends (its client silent) once its answers are written
    expect((await slowEnd).value?.result?.case).toBe("draining");
    for (const stream of [slow, refused, accepted]) {
      for (let next = await stream.next(); !next.done; next = await stream.next()) expect(next.value?.result?.case).toBe("draining");
    }
    expect(slots.used).toBe(0);
  });
});
