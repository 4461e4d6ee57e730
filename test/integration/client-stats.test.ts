import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

describe("statsReport: the server-wide figures of the Stats RPC, and no fake zeros", () => {
  let lmdb: TestServer;
  let redis: TestRedis;
  let overRedis: TestServer;
  beforeAll(async () => {
    redis = await startTestRedis();
    lmdb = await startTestServer({ storage: "lmdb", maxMemoryBytes: 64 * 1024 ** 2 });
    overRedis = await startTestServer({ storage: "redis", redisUrl: redis.url });
  });
  afterAll(async () => {
    await lmdb?.dispose();
    await overRedis?.dispose();
    await redis?.stop();
  });

  it("over LMDB: reports the memory budget and the durable tier's size; the durable tier's per-namespace entries and bytes are absent, not 0", async () => {
    await lmdb.client.setMany({ a: 1, b: 2, c: 3 }, { namespace: "st" });
    const report = await lmdb.client.statsReport({ namespace: "st" });
    expect(report.server).toMatchObject({ memoryBudgetBytes: 64 * 1024 ** 2, memoryBudgetEvictions: 0 });
    expect(report.server.memoryUsedBytes).toBeGreaterThan(0);
    expect(report.server.namespacesHeld).toBeGreaterThanOrEqual(1);
    expect(report.server.durableEntries).toBeGreaterThanOrEqual(3);
    expect(report.server.durableBytes).toBeGreaterThan(0);
    expect("durableBreaker" in report.server).toBe(false);
    const [ns] = report.namespaces;
    expect(ns?.namespace).toBe("st");
    const memory = ns!.tiers.find((t) => t.tier === "memory")!;
    const durable = ns!.tiers.find((t) => t.tier === "lmdb")!;
    expect(memory.entries).toBe(3);
    expect(memory.bytes).toBeGreaterThan(0);
    expect(durable.sets).toBe(3);
    expect("entries" in durable || "bytes" in durable).toBe(false);
    expect(await lmdb.client.stats({ namespace: "st" })).toEqual(report.namespaces);
  });

  it("over Redis: reports the breaker's state; the durable tier's size is absent (not reported)", async () => {
    await overRedis.client.set("k", 1);
    const { server } = await overRedis.client.statsReport();
    expect(server.durableBreaker).toBe("closed");
    expect("durableEntries" in server || "durableBytes" in server).toBe(false);
  });
});
