import { create, type DescMethod, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it, vi } from "vitest";
import { Status } from "../../core/rpc-error.js";
import { LeaseSessionRequestSchema, type LeaseSessionRequest, type LeaseSessionResponseSchema } from "../../gen/tiercache/v1/cache_pb.js";
import { DRAIN_LINGER_MS, leaseSession, type LeaseSessionCalls } from "../../server/rpc/lease-session.js";
import { CallSlots } from "../../server/rpc/call-slots.js";
import { PushQueue } from "../../client/push-queue.js";
import { callContextOf } from "../helpers/call-context.js";
import { fakeTimersWithoutLeaks, settle } from "../helpers/fake-timers-no-leaks.js";

type Response = MessageInitShape<typeof LeaseSessionResponseSchema>;
fakeTimersWithoutLeaks();

const getOrLease = (id: number) => create(LeaseSessionRequestSchema, { id: BigInt(id), call: { case: "getOrLease", value: { namespace: "ns", key: `k${id}`, leaseMs: 1000 } } });
const mapError = () => ({ code: Status.INTERNAL, details: "internal" });

function open(closing: AbortSignal, hold?: Promise<void>) {
  const requests = new PushQueue<LeaseSessionRequest>();
  const ended: { method: string; code: number }[] = [];
  const calls: LeaseSessionCalls = {
    getOrLease: async () => {
      await hold;
      return { found: true };
    },
    set: () => ({}),
    releaseLease: () => ({}),
  };
  const session = leaseSession(requests, callContextOf(new AbortController().signal), calls, {
    maxInFlight: 4,
    maxCallMs: 60_000,
    mapError,
    closing,
    slots: new CallSlots(1024),
    onCallEnd: (method: DescMethod, code: number) => ended.push({ method: method.name, code }),
  }) as AsyncGenerator<Response, void, undefined>;
  return { requests, ended, session };
}

describe("LeaseSession server while draining", () => {
  it("counts a call it answers UNAVAILABLE not_run under its method, as it counts one refused RESOURCE_EXHAUSTED not_run (README: a carried call counts when it is answered)", async () => {
    const closing = new AbortController();
    closing.abort();
    const { requests, ended, session } = open(closing.signal);
    expect((await session.next()).value?.result?.case).toBe("ready");
    expect((await session.next()).value?.result?.case).toBe("draining");
    requests.push(getOrLease(1));
    const refused = (await session.next()).value;
    expect(refused?.result).toMatchObject({ case: "error", value: { code: Status.UNAVAILABLE, notRun: true } });
    requests.end();
    await session.next();
    expect(ended).toEqual([{ method: "GetOrLease", code: Status.UNAVAILABLE }]);
  });

  it("waits DRAIN_LINGER_MS for the client to end its side once nothing is left (DRAIN_LINGER_MS's doc), also when its last call ends after the linger began", async () => {
    const closing = new AbortController();
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const { requests, session } = open(closing.signal, hold);
    await session.next();
    requests.push(getOrLease(1));
    const draining = session.next();
    await settle();
    closing.abort();
    expect((await draining).value?.result?.case).toBe("draining");
    await vi.advanceTimersByTimeAsync(2_000); // the call runs 2 s into the drain
    release();
    expect((await session.next()).value?.id).toBe(1n);
    let ended = false;
    const end = session.next().then((n) => (ended = n.done === true));
    await vi.advanceTimersByTimeAsync(DRAIN_LINGER_MS - 1);
    const endedBeforeLinger = ended;
    requests.end();
    await end;
    expect(endedBeforeLinger, "ended 0 ms after its last answer, while a call sent before the client heard `draining` could still be on its way").toBe(false);
  });
});
