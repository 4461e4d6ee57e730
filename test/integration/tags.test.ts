import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RpcError, Status } from "../../core/rpc-error.js";
import { COHERENCE_BOUND_MS } from "../helpers/eventually.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTestServer, tempDir, type TestServer } from "../helpers/test-server.js";
import { warmLocal } from "../helpers/warm-local.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `check` holds, for at most `ms`; the time it took. */
async function within(ms: number, check: () => Promise<boolean> | boolean): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`condition not met within ${ms} ms`);
    await sleep(10);
  }
  return Date.now() - start;
}

describe("tags across two instances over one Redis, with client local tiers on both", () => {
  let redis: TestRedis;
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    redis = await startTestRedis();
    a = await startTestServer({ storage: "redis", redisUrl: redis.url });
    b = await startTestServer({ storage: "redis", redisUrl: redis.url });
  });
  afterAll(async () => {
    await a?.dispose();
    await b?.dispose();
    await redis?.stop();
  });

  it("an invalidation through A hides the values on B and in both clients' local tiers, and later writes are served", async () => {
    const onA = a.newClient({ localTier: true, namespace: "tags2" });
    const onB = b.newClient({ localTier: true, namespace: "tags2" });
    await onA.set("user:1", { name: "Ada" }, { tags: ["user:1", "org:7"] });
    await onA.setMany({ "team:1": "t1", "team:2": "t2" }, { tags: ["org:7"] });
    await onA.streamSet([["doc:1", "d1"]], { tags: ["org:7", "doc"] });
    await onA.set("other", "kept", { tags: ["org:8"] });
    for (const client of [onA, onB]) for (const key of ["user:1", "team:1", "doc:1", "other"]) await warmLocal(client, key);
    await b.client.get("team:2", { namespace: "tags2" });
    expect((await b.client.getEntry("team:2", { namespace: "tags2" }))?.tier).toBe("memory"); // B's memory tier holds it too

    await onA.invalidateTags(["org:7"]);
    expect(onA.getLocal("user:1")).toBeUndefined(); // the caller's own local tier, at once
    expect(await a.client.get("team:1", { namespace: "tags2" })).toBeUndefined(); // the instance that invalidated, at once
    const took = await within(COHERENCE_BOUND_MS, async () => {
      const gone = ["user:1", "team:1", "team:2", "doc:1"];
      for (const key of gone) if ((await onB.get(key)) !== undefined || (await b.client.get(key, { namespace: "tags2" })) !== undefined) return false;
      return gone.every((key) => onB.getLocal(key) === undefined && onA.getLocal(key) === undefined);
    });
    console.log(`tag invalidation reached instance B and both local tiers in ${took} ms`);
    expect(await onB.get("other")).toBe("kept");
    expect(await onB.getMany(["user:1", "team:1", "other"])).toEqual(new Map([["other", "kept"]]));
    expect(await onB.has("doc:1")).toBe(false);

    await onB.set("user:1", { name: "Ada 2" }, { tags: ["org:7"] });
    expect(await onA.get("user:1")).toEqual({ name: "Ada 2" });
    const stats = await a.client.stats({ namespace: "tags2" });
    expect(stats[0]!.tagInvalidations).toBe(1);
  });

  it("refuses tags past the limits with INVALID_ARGUMENT, in the client and on the server", async () => {
    const tooMany = Array.from({ length: 17 }, (_, i) => `t${i}`);
    await expect(a.client.set("k", 1, { tags: tooMany })).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
    await expect(a.client.invalidateTags([])).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
    await expect(a.client.invalidateTags(["x".repeat(129)])).rejects.toBeInstanceOf(RpcError);
  });

  it("counts a duplicate tag once against the limits", async () => {
    const sixteen = Array.from({ length: 16 }, (_, i) => `d${i}`);
    await a.client.set("dup", 1, { tags: [...sixteen, "d0"] });
    expect(await a.client.get("dup")).toBe(1);
    const sixtyFour = Array.from({ length: 64 }, (_, i) => `d${i}`);
    await a.client.invalidateTags([...sixtyFour, "d3"]);
    expect(await a.client.get("dup")).toBeUndefined();
  });
});

describe("tags on LMDB survive a restart", () => {
  const dir = tempDir();
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });
  afterAll(() => dir.remove());

  it("a value invalidated before the restart stays hidden after it, and one written after the invalidation is served", async () => {
    t = await startTestServer({ storage: "lmdb", dataDir: dir.path });
    await t.client.set("old", "before", { tags: ["release"] });
    await t.client.set("untagged", "u");
    await t.client.invalidateTags(["release"]);
    await t.client.set("new", "after", { tags: ["release"] });
    await t.stop();

    t = await startTestServer({ storage: "lmdb", dataDir: dir.path });
    expect(await t.client.get("old")).toBeUndefined();
    expect(await t.client.get("new")).toBe("after");
    expect(await t.client.get("untagged")).toBe("u");
    await t.client.invalidateTags(["release"]);
    expect(await t.client.get("new")).toBeUndefined();
  });
});

describe("tags on wrap, @cached and wrapMany values", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ storage: "memory" });
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it("wrap's tags option and ctx.setTags tag the stored value, so invalidateTags makes the next wrap load again", async () => {
    for (const localTier of [false, true]) {
      const client = server.newClient({ localTier, namespace: `wrap-tags-${localTier}` });
      let loads = 0;
      const loader = async () => ++loads;
      expect(await client.wrap("by-option", loader, { ttl: 60_000, tags: ["org:1"] })).toBe(1);
      expect(await client.wrap("by-ctx", async (ctx) => {
        ctx.setTags(["org:2"]);
        return ++loads;
      }, { ttl: 60_000, tags: ["org:1"] })).toBe(2);
      await client.settled();
      expect(await client.wrap("by-option", loader, { ttl: 60_000 })).toBe(1);
      await client.invalidateTags(["org:1"]);
      expect(await client.wrap("by-option", loader, { ttl: 60_000 })).toBe(3); // hidden: loaded again
      expect(await client.wrap("by-ctx", loader, { ttl: 60_000 })).toBe(2); // ctx.setTags replaced the option's tags
      await client.settled();
      await client.invalidateTags(["org:2"]);
      expect(await client.wrap("by-ctx", loader, { ttl: 60_000 })).toBe(4);
      await client.settled();
      await client.close();
    }
  });

  it("wrapMany tags each stored value with its ctx's tags, else the option's", async () => {
    const client = server.newClient({ namespace: "wrap-many-tags" });
    const first = await client.wrapMany(["a", "b"], async (missing, ctx) => {
      ctx("b").setTags(["only-b"]);
      return new Map(missing.map((key) => [key, key.toUpperCase()]));
    }, { ttl: 60_000, tags: ["all"] });
    expect(first).toEqual(new Map([["a", "A"], ["b", "B"]]));
    await client.invalidateTags(["only-b"]);
    expect(await client.get("a")).toBe("A");
    expect(await client.get("b")).toBeUndefined();
    await client.invalidateTags(["all"]);
    expect(await client.get("a")).toBeUndefined();
    await client.close();
  });

  it("refuses a wrap tag over the limits with INVALID_ARGUMENT", async () => {
    const client = server.newClient({ namespace: "wrap-tags-bad" });
    await expect(client.wrap("k", async () => 1, { ttl: 1000, tags: ["x".repeat(129)] })).rejects.toSatisfy((err) => RpcError.is(err, Status.INVALID_ARGUMENT));
    await client.close();
  });
});

describe("wrap of a key whose stored value its tags hide, with leases in Redis", () => {
  let redis: TestRedis;
  let server: TestServer;
  beforeAll(async () => {
    redis = await startTestRedis();
    server = await startTestServer({ storage: "redis", redisUrl: redis.url });
  });
  afterAll(async () => {
    await server?.dispose();
    await redis?.stop();
  });

  it("takes the lease at once and stores the loader's value (the hidden value is fresh to the lease script)", async () => {
    const client = server.newClient({ namespace: "hidden-lease" });
    await client.set("k", "old", { ttl: 300_000, tags: ["t1"] });
    await client.invalidateTags(["t1"]);
    const started = Date.now();
    let loads = 0;
    expect(await client.wrap("k", async () => `new-${++loads}`, { ttl: 60_000, leaseWaitMs: 30_000 })).toBe("new-1");
    await client.settled();
    // A hang detector, not a speed check: before the fix the lease was retried until the 30 s wait ran out.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await client.get("k")).toBe("new-1");
    expect(loads).toBe(1);
    await client.close();
  });
});
