import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseMessage, type ChannelMessage } from "../../server/tiers/invalidation-protocol.js";
import { eventually } from "../helpers/eventually.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A PUBLISH Redis ran, and whether a script ran it ("lua") or a client sent it. */
interface SeenPublish {
  fromScript: boolean;
  message: ChannelMessage;
}

describe("a lease holder's write over Redis announces itself", () => {
  let redis: TestRedis;
  let one: TestServer;
  let two: TestServer;
  let monitor: Redis;
  const seen: SeenPublish[] = [];

  beforeAll(async () => {
    redis = await startTestRedis();
    one = await startTestServer({ storage: "redis", redisUrl: redis.url });
    two = await startTestServer({ storage: "redis", redisUrl: redis.url });
    monitor = await new Redis(redis.url).monitor();
    monitor.on("monitor", (_time: string, args: unknown[], source: string) => {
      if (String(args[0]).toLowerCase() !== "publish") return;
      const message = parseMessage(String(args[2]));
      if (message) seen.push({ fromScript: source === "lua", message });
    });
  });
  afterAll(async () => {
    monitor?.disconnect();
    await one?.dispose();
    await two?.dispose();
    await redis?.stop();
  });

  it("from the script that writes it, once, and the other instance drops its copy before it expires", async () => {
    const a = one.newClient({ localTier: true });
    const b = two.newClient();
    const options = { ttl: 4_000, eagerRefresh: 0.5 };
    await a.wrap("k", async () => "v1", options);
    await a.settled();
    await b.get("k");
    expect((await b.getEntry("k"))?.tier).toBe("memory");

    await sleep(2_100); // into the eager-refresh window: the next wrap serves v1 and writes v2 under a lease
    expect(await a.wrap("k", async () => "v2", options)).toBe("v1");
    await a.settled();
    const written = Date.now();
    await eventually(async () => (await b.get("k")) === "v2", 1_500);
    expect(Date.now() - written).toBeLessThan(1_500); // v1 was held in two's memory tier until about 4 s after it was written

    const announcements = seen.filter((p) => p.message.changes.some((c) => c.keys.includes("k")));
    expect(announcements).toHaveLength(2); // the two fenced writes, each announced once
    expect(announcements.every((p) => p.fromScript)).toBe(true);
    expect(new Set(announcements.map((p) => p.message.from)).size).toBe(1);
    expect(announcements[1]!.message.seq).toBeGreaterThan(announcements[0]!.message.seq);
  });
});
