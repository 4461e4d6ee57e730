import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheClient } from "../../client/index.js";
import type { ServerConfig } from "../../server/config.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

type Storage = ServerConfig["storage"];

/** Every read path, server and client, for each deployment: one rule for a stale value. */
describe.each<Storage>(["memory", "lmdb", "redis"])("read paths agree (%s)", (storage) => {
  const clock = fakeClock(Date.now());
  let redis: TestRedis | undefined;
  let t: TestServer;
  let cold: CacheClient;
  /** Over Redis, a second instance: its memory tier is empty, so it reads what Redis holds. */
  let other: TestServer | undefined;
  let n = 0;
  const ns = () => `reads${++n}`;

  beforeAll(async () => {
    if (storage === "redis") redis = await startTestRedis();
    t = await startTestServer({ storage, ...(redis && { redisUrl: redis.url }) }, { clock: clock.now });
    if (redis) other = await startTestServer({ storage, redisUrl: redis.url }, { clock: clock.now });
    cold = other?.client ?? t.newClient();
  });
  afterAll(async () => {
    await other?.dispose();
    await t?.dispose();
    await redis?.stop();
  });

  async function streamed(client: CacheClient, keys: string[], namespace: string): Promise<[string, unknown][]> {
    const out: [string, unknown][] = [];
    for await (const pair of client.streamGet(keys, { namespace })) out.push(pair);
    return out;
  }

  it("a value past its TTL, within grace, is a miss for get, getEntry, getMany, streamGet and has, and stale for wrap", async () => {
    const namespace = ns();
    await t.client.wrap("g", () => "v1", { namespace, ttl: 60_000, grace: 600_000 });
    await t.client.settled();
    expect(await t.client.get("g", { namespace })).toBe("v1");
    clock.advance(61_000);
    for (const client of [t.client, cold]) {
      expect(await client.get("g", { namespace })).toBeUndefined();
      expect(await client.getEntry("g", { namespace })).toBeUndefined();
      expect(await client.getMany(["g"], { namespace })).toEqual(new Map());
      expect(await streamed(client, ["g"], namespace)).toEqual([["g", undefined]]);
      expect(await client.has("g", { namespace })).toBe(false);
    }
    let loads = 0;
    expect(await cold.wrap("g", () => `v${++loads + 1}`, { namespace, ttl: 60_000, grace: 600_000 })).toBe("v1");
  });

  it("touch leaves a stale value alone, and ends the grace of a fresh one in every tier", async () => {
    const namespace = ns();
    await t.client.wrap("g", () => "v", { namespace, ttl: 60_000, grace: 600_000 });
    await t.client.settled();
    expect(await t.client.touch("g", { namespace, ttl: 120_000 })).toBe(true);
    clock.advance(61_000);
    expect(await cold.get("g", { namespace })).toBe("v"); // fresh to the new expiry: the old grace is gone
    clock.advance(60_000);
    expect(await cold.has("g", { namespace })).toBe(false);
    let loads = 0;
    expect(await cold.wrap("g", () => `new${++loads}`, { namespace, ttl: 60_000 })).toBe("new1"); // gone: no stale copy left
    await cold.settled();
    clock.advance(61_000);
    expect(await t.client.touch("g", { namespace, ttl: 120_000 })).toBe(false);
  });

  it("streamGet answers each distinct key once, found or missing", async () => {
    const namespace = ns();
    await t.client.set("a", 1, { namespace });
    expect((await streamed(t.client, ["a", "x", "a", "x"], namespace)).sort()).toEqual([
      ["a", 1],
      ["x", undefined],
    ]);
  });
});
