import { InterceptingCall, type Interceptor } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { CacheClient } from "../../client/index.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { GatedWrites } from "../helpers/gated-writes.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";
import { eventually } from "../helpers/eventually.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads until the local tier serves `key` (the Watch stream is READY and the value was cached). */
async function warm(client: CacheClient, key: string, namespace = "default"): Promise<void> {
  await eventually(async () => {
    await client.get(key, { namespace });
    return (await client.getEntry(key, { namespace }))?.tier === "client";
  });
}

describe("the client's local tier, kept coherent by Watch", () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.dispose();
    t = undefined;
  });

  it("is off by default", async () => {
    t = await startTestServer({ storage: "memory" });
    await t.client.set("k", 1);
    await t.client.get("k");
    expect((await t.client.getEntry("k"))?.tier).toBe("memory");
    expect(t.client.getLocal("k")).toBeUndefined();
  });

  it("serves repeated reads locally, synchronously too, and never longer than the server's TTL", async () => {
    t = await startTestServer({ storage: "memory" });
    const reader = t.newClient({ localTier: { maxTtlMs: 60_000 } });
    await t.client.set("k", { v: 1 });
    await warm(reader, "k");
    expect(reader.getLocal("k")).toEqual({ v: 1 });
    await t.client.set("short", "s", { ttl: 150 });
    await warm(reader, "short");
    await sleep(200);
    expect(reader.getLocal("short")).toBeUndefined();
    expect(await reader.get("short")).toBeUndefined();
  });

  it("drops a local copy when another client writes, deletes, touches or clears", async () => {
    t = await startTestServer({ storage: "memory" });
    const reader = t.newClient({ localTier: true });
    const writer = t.newClient();
    await writer.setMany({ a: 1, b: 2, c: 3 });
    for (const key of ["a", "b", "c"]) await warm(reader, key);
    await writer.set("a", 10);
    await eventually(() => reader.getLocal("a") === undefined, 2_000);
    expect(await reader.get("a")).toBe(10);
    await writer.delete("b");
    await eventually(() => reader.getLocal("b") === undefined, 2_000);
    expect(await reader.get("b")).toBeUndefined();
    await writer.clear();
    await eventually(() => reader.getLocal("c") === undefined, 2_000);
  });

  it("stops serving locally when the Watch stream breaks, and resets after a server restart", async () => {
    t = await startTestServer({ storage: "lmdb" });
    const { dataDir } = t;
    const port = t.server.port;
    const reader = new CacheClient({ address: t.server.address, localTier: true, coherence: { reconnectBaseMs: 20, reconnectMaxMs: 100 } });
    await t.client.set("k", "before");
    await warm(reader, "k");
    await t.stop();
    t = undefined;
    await eventually(() => reader.getLocal("k") === undefined, 3_000);

    const restarted = await startTestServer({ storage: "lmdb", dataDir, port });
    t = restarted;
    const writer = restarted.newClient();
    await eventually(() => writer.set("k", "after").then(() => true, () => false), 5_000);
    const readerAgain = reader;
    await eventually(async () => (await readerAgain.get("k").catch(() => undefined)) === "after", 5_000);
    await warm(readerAgain, "k");
    expect(readerAgain.getLocal("k")).toBe("after");
    readerAgain.close();
  });

  it("has a documented staleness bound: a write is not served stale after it", async () => {
    t = await startTestServer({ storage: "memory" });
    const reader = t.newClient({ localTier: true });
    const writer = t.newClient();
    await writer.set("counter", 0);
    await warm(reader, "counter");
    let worst = 0;
    for (let i = 1; i <= 30; i++) {
      await writer.set("counter", i);
      const acked = Date.now();
      await eventually(async () => (await reader.get("counter")) === i, 3_000);
      worst = Math.max(worst, Date.now() - acked);
    }
    expect(worst).toBeLessThan(2_000);
  });
});

describe("streaming bulk with back-pressure", () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.dispose();
    t = undefined;
  });

  it("does not read keys far ahead of a slow consumer", async () => {
    t = await startTestServer({ storage: "memory" });
    await t.client.streamSet((function* () {
      for (let i = 0; i < 5_000; i++) yield [`k${i}`, "x".repeat(1000)] as const;
    })());
    let pulled = 0;
    const keys = (function* () {
      for (let i = 0; i < 2_000_000; i++) {
        pulled++;
        yield `k${i % 5_000}`;
      }
    })();
    let consumed = 0;
    for await (const [, value] of t.client.streamGet(keys, { batchSize: 100 })) {
      expect(value).toHaveLength(1000);
      if (++consumed === 500) break;
      if (consumed % 100 === 0) await sleep(50);
    }
    expect(consumed).toBe(500);
    // Read-ahead is bounded by HTTP/2 flow-control windows and stream buffers
    // (about 150k short keys here, the same for a 200k or a 2M key source),
    // not by the length of the input.
    expect(pulled).toBeLessThan(300_000);
  });
});

describe("local copies of values with grace", () => {
  it("are not served locally past the value's TTL, only until it goes stale", async () => {
    const t = await startTestServer({ storage: "memory" });
    try {
      const client = t.newClient({ localTier: true });
      await client.wrap("g", async () => "g1", { ttl: 300, grace: 60_000 });
      await warm(client, "g");
      await sleep(400);
      expect(client.getLocal("g")).toBeUndefined();
      expect(await client.get("g")).toBeUndefined();
    } finally {
      await t.dispose();
    }
  });
});

/** Clears GetOrLeaseResponse.ttl_jitter_ppm in every answer, unary or in a LeaseSession, as a server older than that field answers. */
const asOlderServer: Interceptor = (options, nextCall) =>
  new InterceptingCall(nextCall(options), {
    start: (metadata, listener, next) =>
      next(metadata, {
        onReceiveMessage: (message: { ttlJitterPpm?: number; result?: { case?: string; value?: { ttlJitterPpm?: number } } }, receive: (m: unknown) => void) => {
          if (message.ttlJitterPpm !== undefined) message.ttlJitterPpm = 0;
          if (message.result?.case === "getOrLease" && message.result.value !== undefined) message.result.value.ttlJitterPpm = 0;
          receive(message);
        },
      }),
  });

describe("a value `wrap` wrote, in a namespace whose TTLs the server jitters", () => {
  it("is not served locally after the server's shortened TTL, even from a server that does not tell the jitter up front", async () => {
    const t = await startTestServer({ storage: "memory", namespaces: new Map([["jittered", { ttlJitter: 1 }]]) });
    try {
      const client = t.newClient({ namespace: "jittered", localTier: true, channelOptions: { interceptors: [asOlderServer] } });
      await t.client.set("marker", 0, { namespace: "jittered" });
      await warm(client, "marker", "jittered");
      const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
      for (const key of keys) expect(await client.wrap(key, () => key, { ttl: 3000, lease: false })).toBe(key);
      await client.settled();
      await sleep(2200); // each TTL is somewhere in 1..3000 ms: most have ended on the server by now
      const servedAfterExpiry: string[] = [];
      for (const key of keys) {
        // The server first: a copy it no longer holds must be gone locally too by the time it said so.
        if ((await t.client.get(key, { namespace: "jittered" })) === undefined && client.getLocal(key) !== undefined) servedAfterExpiry.push(key);
      }
      expect(servedAfterExpiry).toEqual([]);
    } finally {
      await t.dispose();
    }
  });
});

describe("a value `wrap` wrote, in a namespace whose TTLs the server jitters, before the Set is answered", () => {
  it("is served locally no longer than the shortest TTL the server may give it", async () => {
    const durable = new GatedWrites(() => Date.now());
    const t = await startTestServer({ storage: "memory", namespaces: new Map([["jittered", { ttlJitter: 0.5 }]]) }, { durable });
    try {
      const clock = fakeClock(Date.now());
      const client = t.newClient({ namespace: "jittered", localTier: { clock: clock.now } });
      await t.client.set("marker", 0, { namespace: "jittered" });
      await warm(client, "marker", "jittered");
      const open = durable.hold();
      expect(await client.wrap("k", () => "loaded", { ttl: 10_000, lease: false })).toBe("loaded");
      const reported = (await client.getEntry("k"))?.ttlRemainingMs;
      clock.advance(4_999);
      const before = client.getLocal("k");
      clock.advance(2);
      // The server may keep it for as little as 5,000 ms (ttlJitter 0.5): the client cannot know more until the answer.
      const after = client.getLocal("k");
      open();
      await client.settled();
      // Nor does it report more time left than that.
      expect({ reported, before, after }).toEqual({ reported: 5_000, before: "loaded", after: undefined });
    } finally {
      await t.dispose();
    }
  });
});

describe("metadata of local hits", () => {
  it("keeps the content type and reports the server's expiry as of now (0 only for no expiry)", async () => {
    const clock = fakeClock(Date.now());
    const t = await startTestServer({ storage: "memory" }, { clock: clock.now });
    try {
      const reader = t.newClient({ localTier: { clock: clock.now, maxTtlMs: 3_600_000 } });
      await t.client.set("json", { v: 1 }, { ttl: 60_000 });
      await t.client.set("forever", "f");
      await t.client.set("bytes", Buffer.from("raw"), { ttl: 1_000 });
      await t.client.wrap("graced", async () => "g", { ttl: 10_000, grace: 50_000 });
      for (const key of ["json", "forever", "bytes", "graced"]) {
        await warm(reader, key);
        expect(await reader.getEntry(key), key).toEqual({ ...(await t.client.getEntry(key)), tier: "client" });
      }
      expect(await reader.getEntry("json")).toEqual({ value: { v: 1 }, contentType: "application/json", ttlRemainingMs: 60_000, tier: "client" });
      expect((await reader.getEntry("forever"))?.ttlRemainingMs).toBe(0);
      expect((await reader.getEntry("bytes"))?.contentType).toBe("application/octet-stream");
      expect((await reader.getEntry("graced"))?.ttlRemainingMs).toBe(10_000); // until its grace begins: plain reads miss it then

      clock.advance(999);
      expect(await reader.getEntry("bytes")).toMatchObject({ ttlRemainingMs: 1, tier: "client" });
      expect(await reader.getEntry("json")).toMatchObject({ ttlRemainingMs: 59_001, tier: "client" });
      expect(await reader.getEntry("graced")).toMatchObject({ ttlRemainingMs: 9_001, tier: "client" });
      clock.advance(1);
      expect(reader.getLocal("bytes")).toBeUndefined();
      expect(await reader.getEntry("forever")).toMatchObject({ ttlRemainingMs: 0, tier: "client" });
    } finally {
      await t.dispose();
    }
  });
});
