import type { MessageInitShape } from "@bufbuild/protobuf";
import { credentials, Metadata } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { PushQueue } from "../../client/push-queue.js";
import { createClient } from "../../core/grpc-adapter.js";
import { MAX_RECEIVE_HEADER } from "../../core/message-limits.js";
import { CacheService, type LeaseSessionRequestSchema } from "../../gen/tiercache/v1/cache_pb.js";
import { startServerChild, type ServerChild } from "../helpers/server-child.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A LeaseSession stream whose client stops reading: once the transport's
 * buffers are full (40 answers of 1000 KiB), later answers queue in the
 * session. When the stream then ends, the queued answers are dropped
 * unwritten; those of GetOrLease calls held lease tokens nobody received, and
 * the keys stayed leased for the whole lease time (found by review). Answers
 * already handed to the transport when the stream ends are not known to be
 * lost: their leases still end at their lease time.
 */
describe("LeaseSession answers never written when the stream ends", () => {
  let children: ServerChild[] = [];
  afterEach(async () => {
    for (const child of children) await child.stop().catch(() => {});
    children = [];
  });

  it("give back the leases their tokens held", async () => {
    const server = await startServerChild(["--storage", "memory"]);
    children.push(server);
    const raw = createClient(CacheService, server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
    try {
      await raw.set({ namespace: "q", key: "big", value: new Uint8Array(1000 * 1024), contentType: "application/octet-stream", ttlMs: 600_000n });
      const requests = new PushQueue<MessageInitShape<typeof LeaseSessionRequestSchema>>();
      const client = new AbortController();
      const responses = raw.leaseSession(requests, { deadline: Infinity, signal: client.signal });
      const unread = (async () => {
        for await (const _ of responses) await new Promise(() => {}); // reads the first answer, then nothing more
      })().catch(() => {});
      let id = 1n;
      for (let i = 0; i < 40; i++) requests.push({ id: id++, timeoutMs: 30_000, call: { case: "getOrLease", value: { namespace: "q", key: "big", leaseMs: 60_000 } } });
      for (let i = 0; i < 5; i++) requests.push({ id: id++, timeoutMs: 30_000, call: { case: "getOrLease", value: { namespace: "q", key: `miss-${i}`, leaseMs: 60_000 } } });
      await sleep(1000);
      client.abort();
      void unread;
      await sleep(500);
      const stillLeased: string[] = [];
      for (let i = 0; i < 5; i++) {
        const next = await raw.getOrLease({ namespace: "q", key: `miss-${i}`, leaseMs: 1000, waitMs: 0 });
        if (!next.leaseToken) stillLeased.push(`miss-${i}`);
      }
      expect(stillLeased).toEqual([]);
    } finally {
      raw.close();
    }
  }, 30_000);

  it("an answer refused as over the client's receive limit gives back the lease its token held", async () => {
    const server = await startServerChild(["--storage", "memory"]);
    children.push(server);
    const raw = createClient(CacheService, server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
    try {
      // A stale value (within grace) too big for the client: GetOrLease grants the lease with it, and the answer cannot be sent.
      await raw.set({ namespace: "q", key: "stale", value: new Uint8Array(20_000), contentType: "application/octet-stream", ttlMs: 50n, graceMs: 600_000n });
      await sleep(150);
      const requests = new PushQueue<MessageInitShape<typeof LeaseSessionRequestSchema>>();
      const metadata = new Metadata();
      metadata.set(MAX_RECEIVE_HEADER, "10000");
      const answers = raw.leaseSession(requests, { deadline: Infinity, metadata })[Symbol.asyncIterator]();
      expect((await answers.next()).value?.result?.case).toBe("ready");
      requests.push({ id: 1n, timeoutMs: 5_000, call: { case: "getOrLease", value: { namespace: "q", key: "stale", leaseMs: 60_000 } } });
      const refused = (await answers.next()).value?.result;
      expect(refused?.case === "error" && refused.value.code).toBe(8); // RESOURCE_EXHAUSTED
      requests.end();
      await sleep(200);
      const next = await raw.getOrLease({ namespace: "q", key: "stale", leaseMs: 1000, waitMs: 0 });
      expect({ stale: next.stale, leased: next.leaseToken !== "" }).toEqual({ stale: true, leased: true });
    } finally {
      raw.close();
    }
  }, 30_000);
});
