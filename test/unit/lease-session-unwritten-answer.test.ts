import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { Status } from "../../core/rpc-error.js";
import { LeaseSessionRequestSchema, type LeaseSessionRequest } from "../../gen/tiercache/v1/cache_pb.js";
import { leaseSession, type LeaseSessionCalls } from "../../server/rpc/lease-session.js";
import { callContextOf } from "../helpers/call-context.js";

async function* requestsOf(...items: LeaseSessionRequest[]): AsyncIterable<LeaseSessionRequest> {
  yield* items;
  await new Promise(() => {}); // the client keeps its side open
}

/** Answers GetOrLease with a lease token per key; records the leases given back. */
function leasingCalls(givenBack: string[]): LeaseSessionCalls {
  return {
    getOrLease: async (request) => ({ found: false, leaseToken: `token-${request.key}` }),
    set: async () => ({}),
    releaseLease: async (request) => (givenBack.push(`${request.key}:${request.leaseToken}`), { released: true }),
  };
}

const getOrLease = (id: number) => create(LeaseSessionRequestSchema, { id: BigInt(id), call: { case: "getOrLease", value: { namespace: "ns", key: `k${id}`, leaseMs: 1000 } } });
const settle = () => new Promise((resolve) => setImmediate(resolve));

/**
 * The writer of a LeaseSession (the adapter's writeAll) takes the answers one
 * by one; when the call is over as it comes to one, it stops there and that
 * answer is never written. An unwritten GetOrLease answer holds a lease token
 * nobody received (found by review): its lease is given back.
 */
describe("LeaseSession: an answer the writer stops at", () => {
  it("gives back the lease its token held; answers it took keep theirs", async () => {
    const givenBack: string[] = [];
    const session = leaseSession(requestsOf(getOrLease(1), getOrLease(2)), callContextOf(new AbortController().signal), leasingCalls(givenBack), {
      maxInFlight: 4,
      maxCallMs: 60_000,
      mapError: () => ({ code: Status.INTERNAL, details: "internal" }),
    })[Symbol.asyncIterator]();
    expect((await session.next()).value?.result?.case).toBe("ready");
    const first = (await session.next()).value;
    expect(first?.result?.case).toBe("getOrLease");
    const second = (await session.next()).value; // taking the second means the first was written
    expect(second?.result?.case).toBe("getOrLease");
    await session.return?.(undefined); // the call is over: the second is never written
    await settle();
    expect(givenBack).toEqual([`k${second!.id}:token-k${second!.id}`]);
  });
});
