import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTENT_TYPE_JSON, CONTENT_TYPE_TAGGED_JSON, RpcError, Status } from "../../client/index.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

describe.each(["lmdb", "memory"] as const)("CacheService over a real server (storage=%s)", (storage) => {
  const clock = fakeClock();
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer({ storage }, { clock: clock.now });
  });
  afterAll(async () => {
    await t.dispose();
  });

  it("sets, gets and deletes a value", async () => {
    const { client } = t;
    expect(await client.get("missing")).toBeUndefined();
    await client.set("user:1", { name: "Ada", born: 1815 });
    expect(await client.get("user:1")).toEqual({ name: "Ada", born: 1815 });
    expect(await client.has("user:1")).toBe(true);
    expect(await client.delete("user:1")).toBe(true);
    expect(await client.delete("user:1")).toBe(false);
    expect(await client.get("user:1")).toBeUndefined();
    expect(await client.has("user:1")).toBe(false);
  });

  it("round-trips special JS values and tells null from a miss", async () => {
    const { client } = t;
    const value = {
      when: new Date("2024-01-02T03:04:05.006Z"),
      big: 12345678901234567890n,
      map: new Map<unknown, unknown>([["a", 1], [2, new Set([3])]]),
      nothing: undefined,
      empty: null,
      bytes: Buffer.from([0, 1, 255]),
    };
    await client.set("special", value);
    expect(await client.get("special")).toEqual(value);
    const entry = await client.getEntry("special");
    expect(entry?.contentType).toBe(CONTENT_TYPE_TAGGED_JSON);

    await client.set("null", null);
    expect(await client.get("null")).toBeNull();
    expect((await client.getEntry("null"))?.contentType).toBe(CONTENT_TYPE_JSON);
    expect(await client.has("null")).toBe(true);

    await client.set("undefined", undefined);
    expect(await client.has("undefined")).toBe(true);
    const stored = await client.getEntry("undefined");
    expect(stored).toBeDefined();
    expect(stored?.value).toBeUndefined();
  });

  it("expires values by TTL and reports the remaining TTL", async () => {
    const { client } = t;
    await client.set("short", "v", { ttl: 1000 });
    await client.set("forever", "v");
    expect((await client.getEntry("short"))?.ttlRemainingMs).toBe(1000);
    expect((await client.getEntry("forever"))?.ttlRemainingMs).toBe(0);
    clock.advance(999);
    expect(await client.get("short")).toBe("v");
    clock.advance(1);
    expect(await client.get("short")).toBeUndefined();
    expect(await client.has("short")).toBe(false);
    expect(await client.get("forever")).toBe("v");
  });

  it("touch gives an existing key a new TTL", async () => {
    const { client } = t;
    await client.set("touched", 1, { ttl: 100 });
    expect(await client.touch("touched", { ttl: 5000 })).toBe(true);
    clock.advance(1000);
    expect(await client.get("touched")).toBe(1);
    expect((await client.getEntry("touched"))?.ttlRemainingMs).toBe(4000);
    expect(await client.touch("no-such-key", { ttl: 5000 })).toBe(false);
  });

  it("keeps namespaces apart, including clear", async () => {
    const a = t.newClient({ namespace: "team-a" });
    const b = t.newClient({ namespace: "team-b" });
    await a.set("k", "from a");
    await b.set("k", "from b");
    expect(await a.get("k")).toBe("from a");
    expect(await b.get("k")).toBe("from b");
    expect(await a.get("k", { namespace: "team-b" })).toBe("from b");
    await a.clear();
    expect(await a.get("k")).toBeUndefined();
    expect(await b.get("k")).toBe("from b");
  });

  it("getMany, setMany and deleteMany work in batches", async () => {
    const { client } = t;
    await client.setMany({ a: 1, b: "two", c: [3] }, { namespace: "bulk" });
    await client.setMany(new Map([["d", { four: 4 }]]), { namespace: "bulk" });
    const got = await client.getMany(["a", "b", "c", "d", "zzz"], { namespace: "bulk" });
    expect(got).toEqual(new Map<string, unknown>([["a", 1], ["b", "two"], ["c", [3]], ["d", { four: 4 }]]));
    expect(await client.deleteMany(["a", "b", "zzz"], { namespace: "bulk" })).toBe(2);
    expect([...(await client.getMany(["a", "b", "c"], { namespace: "bulk" })).keys()]).toEqual(["c"]);
  });

  it("streams bulk sets and gets", async () => {
    const { client } = t;
    const n = 2500;
    const entries = function* () {
      for (let i = 0; i < n; i++) yield [`key-${i}`, { i }] as const;
    };
    expect(await client.streamSet(entries(), { namespace: "stream", batchSize: 300 })).toBe(n);
    const keys = Array.from({ length: n + 10 }, (_, i) => `key-${i}`);
    const seen = new Map<string, unknown>();
    for await (const [key, value] of client.streamGet(keys, { namespace: "stream", batchSize: 400 })) seen.set(key, value);
    expect(seen.size).toBe(n + 10);
    for (let i = 0; i < n; i++) expect(seen.get(`key-${i}`)).toEqual({ i });
    expect(seen.get(`key-${n + 5}`)).toBeUndefined();
    expect(seen.has(`key-${n + 5}`)).toBe(true);
  });

  it("reports statistics per namespace and tier", async () => {
    const client = t.newClient({ namespace: "stats" });
    await client.set("x", "y");
    await client.get("x");
    await client.get("nope");
    const [stats] = await client.stats({ namespace: "stats" });
    expect(stats?.namespace).toBe("stats");
    const memory = stats?.tiers[0];
    expect(memory?.tier).toBe("memory");
    expect(memory?.hits).toBe(1);
    expect(memory?.misses).toBe(1);
    expect(memory?.entries).toBe(1);
    expect(stats?.tiers.length).toBe(storage === "lmdb" ? 2 : 1);
    if (storage === "lmdb") expect(stats?.tiers[1]?.misses).toBe(1);
    const all = await client.stats();
    expect(all.map((s) => s.namespace)).toContain("stats");
  });

  it("answers bad input with INVALID_ARGUMENT or RESOURCE_EXHAUSTED", async () => {
    const { client } = t;
    const code = async (p: Promise<unknown>) => {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RpcError);
      return (err as RpcError).code;
    };
    expect(await code(client.get(""))).toBe(Status.INVALID_ARGUMENT);
    expect(await code(client.get("k".repeat(1025)))).toBe(Status.INVALID_ARGUMENT);
    expect(await code(client.set("k", 1, { namespace: "bad namespace!" }))).toBe(Status.INVALID_ARGUMENT);
    expect(await code(client.set("k", 1, { ttl: -5 }))).toBe(Status.INVALID_ARGUMENT);
    expect(await code(client.set("big", Buffer.alloc(t.config.maxValueBytes + 1)))).toBe(Status.RESOURCE_EXHAUSTED);
    const tooMany = Array.from({ length: t.config.maxBatch + 1 }, (_, i) => `k${i}`);
    expect(await code(client.getMany(tooMany))).toBe(Status.RESOURCE_EXHAUSTED);
    const err = await client.get("", { namespace: "x" }).catch((e: RpcError) => e);
    expect((err as RpcError).details).toMatch(/key must not be empty/);
  });
});
