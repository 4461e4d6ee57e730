import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { MAX_RECEIVE_HEADER } from "../../core/message-limits.js";
import { Status } from "../../core/rpc-error.js";
import { LeaseSessionRequestSchema, type LeaseSessionRequest, type LeaseSessionResponseSchema } from "../../gen/tiercache/v1/cache_pb.js";
import { leaseSession, type LeaseSessionCalls } from "../../server/rpc/lease-session.js";
import { PushQueue } from "../../client/push-queue.js";
import { callContextOf } from "../helpers/call-context.js";

type Response = MessageInitShape<typeof LeaseSessionResponseSchema>;
const getOrLease = (id: number) => create(LeaseSessionRequestSchema, { id: BigInt(id), call: { case: "getOrLease", value: { namespace: "ns", key: `k${id}`, leaseMs: 1000 } } });

async function answerWith(values: string[]): Promise<string[]> {
  const md = new Metadata();
  for (const v of values) md.add(MAX_RECEIVE_HEADER, v);
  const requests = new PushQueue<LeaseSessionRequest>();
  const calls: LeaseSessionCalls = { getOrLease: () => ({ found: true, value: new Uint8Array(1000), contentType: "application/octet-stream" }), set: () => ({}), releaseLease: () => ({}) };
  const session = leaseSession(requests, callContextOf(new AbortController().signal, md), calls, { maxInFlight: 4, maxCallMs: 60_000, mapError: () => ({ code: 13, details: "x" }) }) as AsyncGenerator<Response>;
  await session.next();
  requests.push(getOrLease(1), getOrLease(2));
  requests.end();
  const seen: string[] = [];
  for await (const r of session) seen.push(r.result?.case === "error" ? `error ${(r.result.value as { code: number }).code}` : String(r.result?.case));
  return seen;
}

describe("held: tiercache-max-receive-message-bytes header", () => {
  it.each([[["abc"]], [["-5"]], [["0"]], [["1e6"]], [["99999999999999999999"]], [[" 100"]], [[""]], [["2000", "1"]]])("%j is ignored or taken as an ample limit: answers delivered", async (values) => {
    expect(await answerWith(values)).toEqual(["getOrLease", "getOrLease"]);
  });
  it("a tiny limit fails only each too-large answer, with its own RESOURCE_EXHAUSTED; the stream goes on", async () => {
    expect(await answerWith(["10"])).toEqual([`error ${Status.RESOURCE_EXHAUSTED}`, `error ${Status.RESOURCE_EXHAUSTED}`]);
  });
});
