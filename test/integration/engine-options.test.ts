import { afterEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/test-server.js";
import { resolveConfig } from "../../server/config.js";

describe("engine options through the service", () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.dispose();
    t = undefined;
  });

  it("applies per-namespace settings and leaves other namespaces on the server-wide ones", async () => {
    const { namespaces } = resolveConfig(["--namespaces", '{"tiny":{"maxEntries":2,"policy":"fifo","defaultTtl":"1h"}}'], {});
    t = await startTestServer({ storage: "memory", namespaces });
    const tiny = t.newClient({ namespace: "tiny" });
    for (const key of ["a", "b", "c"]) await tiny.set(key, key);
    for (const key of ["a", "b", "c"]) await t.client.set(key, key);
    const [tinyStats] = await tiny.stats({ namespace: "tiny" });
    expect(tinyStats?.tiers[0]).toMatchObject({ entries: 2, evictionsCount: 1 });
    expect(await tiny.get("a")).toBeUndefined();
    expect((await tiny.getEntry("c"))?.ttlRemainingMs).toBeGreaterThan(3_590_000);
    const [defaultStats] = await t.client.stats({ namespace: "default" });
    expect(defaultStats?.tiers[0]).toMatchObject({ entries: 3, evictionsCount: 0 });
    expect((await t.client.getEntry("c"))?.ttlRemainingMs).toBe(0);
  });

  it("spreads TTLs with jitter, never lengthening them", async () => {
    t = await startTestServer({ storage: "memory", ttlJitter: 0.5 });
    const ttls: number[] = [];
    for (let i = 0; i < 40; i++) {
      await t.client.set(`k${i}`, i, { ttl: 100_000 });
      ttls.push((await t.client.getEntry(`k${i}`))!.ttlRemainingMs);
    }
    expect(Math.max(...ttls)).toBeLessThanOrEqual(100_000);
    expect(Math.min(...ttls)).toBeGreaterThanOrEqual(49_000);
    expect(new Set(ttls).size).toBeGreaterThan(10);
  });

  it("stores large values compressed and reports the ratio; reads give the original bytes", async () => {
    t = await startTestServer({ storage: "lmdb" });
    const doc = { rows: Array.from({ length: 400 }, (_, i) => ({ id: i, name: `row number ${i}`, tags: ["alpha", "beta"] })) };
    await t.client.set("doc", doc, { namespace: "docs" });
    await t.client.set("small", { a: 1 }, { namespace: "docs" });
    const [stats] = await t.client.stats({ namespace: "docs" });
    expect(stats!.bytesIn).toBeGreaterThan(16_000);
    expect(stats!.compressionRatio).toBeGreaterThan(3);
    expect(await t.client.get("doc", { namespace: "docs" })).toEqual(doc);
    await t.stop();
    const again = await startTestServer({ storage: "lmdb", dataDir: t.dataDir });
    expect(await again.client.get("doc", { namespace: "docs" })).toEqual(doc);
    await again.stop();
  });

  it("does not compress when compression is off", async () => {
    t = await startTestServer({ storage: "memory", compressionThreshold: "off" });
    await t.client.set("doc", "x".repeat(50_000));
    const [stats] = await t.client.stats({ namespace: "default" });
    expect(stats!.compressionRatio).toBeLessThan(1);
  });

  it("serves Prometheus metrics on the metrics port when asked, and none by default", async () => {
    t = await startTestServer({ storage: "memory", metricsPort: 0 });
    await t.client.set("k", "v", { namespace: "m" });
    await t.client.get("k", { namespace: "m" });
    await t.client.get("missing", { namespace: "m" });
    const res = await fetch(`http://127.0.0.1:${t.server.metricsPort}/metrics`);
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain('tiercache_hits_total{namespace="m",tier="memory"} 1');
    expect(body).toContain('tiercache_misses_total{namespace="m",tier="memory"} 1');
    expect(body).toContain('tiercache_entries{namespace="m",tier="memory"} 1');
    expect(body).toMatch(/tiercache_evictions_total\{namespace="m",tier="memory",cause="size"\} 0/);
    expect(body).toContain("process_cpu_user_seconds_total");
    expect((await fetch(`http://127.0.0.1:${t.server.metricsPort}/other`)).status).toBe(404);
    await t.dispose();
    t = await startTestServer({ storage: "memory" });
    expect(t.server.metricsPort).toBeUndefined();
  });
});
