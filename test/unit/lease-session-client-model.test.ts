import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LeaseSession, type LeaseSessionTransport } from "../../client/lease-session.js";
import type { ProcessHold } from "../../client/process-hold.js";
import { RpcError, Status } from "../../core/rpc-error.js";
import { LeaseSessionResponseSchema, type LeaseSessionResponse } from "../../gen/tiercache/v1/cache_pb.js";

/** A fake server side of one stream: sees what was sent, answers by id, ends. */
class Stream {
  sent: { id: bigint; name: string; key: string; timeoutMs: number }[] = [];
  answered = new Set<bigint>();
  ready = false;
  maxInFlight = 0;
  over = false;
  requestsEnded = false;
  violations: string[] = [];
  #queue: LeaseSessionResponse[] = [];
  #end: { error?: unknown } | undefined;
  #wake: (() => void) | undefined;
  constructor(requests: AsyncIterable<any>) {
    void (async () => {
      for await (const r of requests) {
        const name = r.call.case as string;
        if (!this.ready && name === "set") this.violations.push(`set ${r.call.value.key} sent before READY`);
        this.sent.push({ id: r.id, name, key: r.call.value.key, timeoutMs: r.timeoutMs });
        const unanswered = this.sent.filter((s) => !this.answered.has(s.id)).length;
        const bound = this.ready ? this.maxInFlight : 1;
        if (unanswered > bound) this.violations.push(`${unanswered} unanswered > ${bound}`);
      }
      this.requestsEnded = true;
    })();
  }
  push(r: LeaseSessionResponse) { this.#queue.push(r); this.#notify(); }
  endedOk = false;
  end(error?: unknown) { if (this.over) return; this.over = true; this.endedOk = error === undefined; this.#end = error === undefined ? {} : { error }; this.#notify(); }
  #notify() { const w = this.#wake; this.#wake = undefined; w?.(); }
  async *responses(): AsyncIterable<LeaseSessionResponse> {
    for (;;) {
      const next = this.#queue.shift();
      if (next) { yield next; continue; }
      if (this.#end) { if ("error" in this.#end) throw this.#end.error; return; }
      await new Promise<void>((r) => (this.#wake = r));
    }
  }
}

type Cmd =
  | { t: "call"; set: boolean; timeoutMs: number }
  | { t: "ready"; max: number }
  | { t: "answer"; pick: number; how: "ok" | "error" | "notRun" }
  | { t: "time"; ms: number }
  | { t: "fail" }
  | { t: "endOk" }
  | { t: "close" };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ t: fc.constant("call" as const), set: fc.boolean(), timeoutMs: fc.integer({ min: 1, max: 100 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("ready" as const), max: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 10, arbitrary: fc.record({ t: fc.constant("answer" as const), pick: fc.nat(50), how: fc.constantFrom("ok" as const, "error" as const, "notRun" as const) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant("time" as const), ms: fc.integer({ min: 1, max: 60 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: "fail" as const }) },
  { weight: 1, arbitrary: fc.constant({ t: "endOk" as const }) },
  { weight: 1, arbitrary: fc.constant({ t: "close" as const }) },
);

const settle = async () => { for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r)); };

beforeEach(() => void vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] }));
afterEach(() => void vi.useRealTimers());

describe("client LeaseSession under random interleavings (fast-check)", () => {
  it("settles every call once, never sends more than the server reads or a Set before READY, never gives a call two effects, and balances its hold", async () => {
    let runs = 0, totalCalls = 0, totalSent = 0, totalUnary = 0, totalStreams = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 10, maxLength: 80 }), async (cmds) => {
        runs++;
        const streams: Stream[] = [];
        const unary: string[] = [];
        let held = 0;
        const hold = { begin: () => void held++, end: () => void held-- } as unknown as ProcessHold;
        const unaryCall = (name: string) => async (request: { key?: string }) => {
          unary.push(request.key ?? "");
          return (name === "set" ? {} : { found: true }) as never;
        };
        const transport: LeaseSessionTransport = {
          open(requests) { const s = new Stream(requests); streams.push(s); return s.responses(); },
          unary: { getOrLease: unaryCall("getOrLease"), set: unaryCall("set"), releaseLease: unaryCall("releaseLease") },
          callOptions: () => ({}),
        };
        const session = new LeaseSession(transport, { hold });
        const calls: { key: string; settled: number; outcome?: string; deadlineAt: number }[] = [];
        let n = 0;
        const current = () => streams.at(-1);
        for (const c of cmds) {
          if (c.t === "call") {
            const key = `k${n++}`;
            const rec = { key, settled: 0, deadlineAt: Date.now() + c.timeoutMs } as (typeof calls)[number];
            calls.push(rec);
            const p = c.set ? session.call("set", { namespace: "n", key, value: new Uint8Array(10) }, c.timeoutMs) : session.call("getOrLease", { namespace: "n", key }, c.timeoutMs);
            p.then(() => { rec.settled++; rec.outcome = "ok"; }, (e: unknown) => { rec.settled++; rec.outcome = e instanceof RpcError ? String(e.code) : "thrown"; });
          } else if (c.t === "ready") {
            const s = current();
            if (s && !s.ready && !s.over) { s.ready = true; s.maxInFlight = c.max; s.push(create(LeaseSessionResponseSchema, { result: { case: "ready", value: { maxInFlight: c.max } } })); }
          } else if (c.t === "answer") {
            const live = streams.flatMap((s) => (s.over ? [] : s.sent.filter((x) => !s.answered.has(x.id)).map((x) => ({ s, x }))));
            if (live.length > 0) {
              const { s, x } = live[c.pick % live.length]!;
              s.answered.add(x.id);
              const result = c.how === "ok" ? { case: x.name, value: {} } : { case: "error", value: { code: c.how === "notRun" ? Status.RESOURCE_EXHAUSTED : Status.NOT_FOUND, message: "x", notRun: c.how === "notRun" } };
              s.push(create(LeaseSessionResponseSchema, { id: x.id, result } as never));
              if (c.how === "notRun") (s as any).notRun = [...((s as any).notRun ?? []), x.key];
            }
          } else if (c.t === "time") await vi.advanceTimersByTimeAsync(c.ms);
          else if (c.t === "fail") current()?.end(new RpcError(Status.UNAVAILABLE, "boom"));
          else if (c.t === "endOk") { const s = current(); if (s && s.requestsEnded) s.end(); }
          else if (c.t === "close") session.close();
          await settle();
        }
        // Wind down: every stream READY, everything answered, time passes beyond every deadline.
        for (let round = 0; round < 20; round++) {
          for (const s of streams) {
            if (s.over) continue;
            if (!s.ready) { s.ready = true; s.maxInFlight = 2; s.push(create(LeaseSessionResponseSchema, { result: { case: "ready", value: { maxInFlight: 2 } } })); }
            for (const x of s.sent) if (!s.answered.has(x.id)) { s.answered.add(x.id); s.push(create(LeaseSessionResponseSchema, { id: x.id, result: { case: x.name, value: {} } } as never)); }
          }
          await settle();
          await vi.advanceTimersByTimeAsync(50);
        }
        session.close();
        for (const s of streams) if (s.requestsEnded) s.end();
        await vi.advanceTimersByTimeAsync(500);
        await settle();
        totalCalls += calls.length; totalStreams += streams.length; totalUnary += unary.length; for (const s of streams) totalSent += s.sent.length;
        expect(streams.flatMap((s) => s.violations)).toEqual([]);
        expect(calls.filter((c) => c.settled !== 1).map((c) => `${c.key} settled ${c.settled}`)).toEqual([]);
        expect(held).toBe(0);
        // effects: a stream send not answered notRun, plus a unary run; a stream ends OK only once it answered every call it
        // read (the server's contract), so a send it left unanswered was never read and had no effect
        const effects = new Map<string, number>();
        for (const s of streams) {
          for (const x of s.sent) {
            if (((s as any).notRun ?? []).includes(x.key) || (s.endedOk && !s.answered.has(x.id))) continue;
            effects.set(x.key, (effects.get(x.key) ?? 0) + 1);
          }
        }
        for (const k of unary) effects.set(k, (effects.get(k) ?? 0) + 1);
        expect([...effects].filter(([, e]) => e > 1)).toEqual([]);
        // no call is sent on a stream with less than 1 ms left, or reported ok after its deadline... (sent timeoutMs >= 1)
        for (const s of streams) for (const x of s.sent) expect(x.timeoutMs).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 400 },
    );
    console.log("runs", runs, "calls", totalCalls, "sent on streams", totalSent, "unary", totalUnary, "streams", totalStreams);
  }, 120_000);
});
