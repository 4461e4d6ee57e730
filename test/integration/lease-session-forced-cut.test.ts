import { credentials } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { PushQueue } from "../../client/push-queue.js";
import { createClient } from "../../core/grpc-adapter.js";
import { RpcError, statusName } from "../../core/rpc-error.js";
import { CacheService, type LeaseSessionRequestSchema } from "../../gen/tiercache/v1/cache_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { startServerChild, type ServerChild } from "../helpers/server-child.js";

let children: ServerChild[] = [];
afterEach(async () => {
  for (const c of children) await c.stop().catch(() => {});
  children = [];
});

describe("a LeaseSession stream cut by the server's shutdown grace (calls still running)", () => {
  it("does not end OK (the client takes OK as 'every unanswered call was never read' and re-sends them)", async () => {
    const a = await startServerChild(["--storage", "memory", "--shutdown-grace", "1s"]);
    children.push(a);
    const raw = createClient(CacheService, a.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
    await raw.getOrLease({ namespace: "cut", key: "held", leaseMs: 60_000 }); // someone else holds the lease
    const requests = new PushQueue<MessageInitShape<typeof LeaseSessionRequestSchema>>();
    const seen: string[] = [];
    let end = "";
    const reading = (async () => {
      try {
        for await (const r of raw.leaseSession(requests, { deadline: Infinity })) {
          seen.push(r.result.case === "error" ? `${r.id}:error` : `${r.id}:${r.result.case}`);
          if (r.result.case === "ready") requests.push({ id: 1n, timeoutMs: 30_000, call: { case: "getOrLease", value: { namespace: "cut", key: "held", leaseMs: 1000, waitMs: 20_000 } } });
        }
        end = "OK";
      } catch (e) {
        end = e instanceof RpcError ? `${statusName(e.code)}: ${e.details}` : String(e);
      }
    })();
    await new Promise((r) => setTimeout(r, 300)); // the GetOrLease is read and waits for the lease on the server
    const t0 = Date.now();
    a.child.send("stop");
    await reading;
    raw.close();
    console.log("cut", JSON.stringify({ seen, end, afterMs: Date.now() - t0 }));
    expect({ answered: seen.includes("1:getOrLease") || seen.includes("1:error"), end }).not.toMatchObject({ answered: false, end: "OK" });
  }, 30_000);
});
