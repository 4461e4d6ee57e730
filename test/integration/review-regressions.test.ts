import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RpcError, Status } from "../../client/index.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/** Bugs a hostile review reproduced against the client and service; each test failed before its fix. */
describe("review regressions", () => {
  const clock = fakeClock(Date.now());
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory", maxValueBytes: 64 * 1024, maxKeyBytes: 1024, maxMessageBytes: 64 * 1024 + 1024 + 1024 }, { clock: clock.now });
  });
  afterAll(async () => {
    await t?.dispose();
  });

  it("wrap with staleWhileRevalidate off: the caller running the loader also serves stale after leaseWaitMs", async () => {
    const namespace = "swr-off";
    await t.client.wrap("k", () => "old", { namespace, ttl: 1_000, grace: 600_000 });
    clock.advance(2_000);
    let release!: () => void;
    const slow = new Promise<string>((resolve) => (release = () => resolve("new")));
    const value = await t.client.wrap("k", () => slow, { namespace, ttl: 1_000, grace: 600_000, staleWhileRevalidate: false, leaseWaitMs: 100 });
    release();
    expect(value).toBe("old");
  });

  it("refuses a softTimeout or hardTimeout no timer can hold, instead of firing at once", async () => {
    for (const options of [{ hardTimeout: 2 ** 31 }, { softTimeout: 1e12 }]) {
      const err = await t.client.wrap("timer", () => "v", { namespace: "timers", ...options }).catch((e: unknown) => e);
      expect(RpcError.is(err, Status.INVALID_ARGUMENT), JSON.stringify(options)).toBe(true);
    }
  });

  it("streamGet answers each distinct key of a batch once, and a key again in each later batch that asks it", async () => {
    await t.client.set("k1", 1, { namespace: "batches" });
    const got: [string, unknown][] = [];
    for await (const pair of t.client.streamGet(["k1", "k1", "zz", "zz", "k1"], { namespace: "batches", batchSize: 2 })) got.push(pair);
    expect(got.sort()).toEqual([
      ["k1", 1],
      ["k1", 1],
      ["zz", undefined],
    ]);
  });

  it("GetMany returns one value of the largest size with the longest key at the smallest message limit the server accepts", async () => {
    const key = "k".repeat(1024);
    const big = Buffer.alloc(64 * 1024, 7);
    await t.client.set(key, big, { namespace: "limits" });
    const found = await t.client.getMany([key], { namespace: "limits" });
    expect((found.get(key) as Buffer).byteLength).toBe(big.byteLength);
  });

  it("touch without options gives the namespace default TTL, not a TypeError", async () => {
    await t.client.set("t", 1, { namespace: "touch", ttl: 60_000 });
    expect(await t.client.touch("t", { namespace: "touch" })).toBe(true);
  });
});
