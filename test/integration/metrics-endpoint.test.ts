import { credentials, makeGenericClientConstructor, status, type Client, type ServiceError } from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { DURABLE_HEALTH_NAME } from "../../server/server.js";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../core/clock.js";
import { createClient } from "../../core/grpc-adapter.js";
import { RpcError } from "../../core/rpc-error.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { RPC_DURATION_BUCKETS } from "../../server/observability/rpc-metrics.js";
import type { StatusReport } from "../../server/observability/status-report.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

let t: TestServer | undefined;
let redis: TestRedis | undefined;
afterEach(async () => {
  await t?.dispose();
  t = undefined;
  await redis?.stop();
  redis = undefined;
});

function http(server: TestServer, path: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${server.server.metricsPort}${path}`);
}

async function scrape(server: TestServer): Promise<string> {
  const res = await http(server, "/metrics");
  expect(res.status).toBe(200);
  return res.text();
}

/** The value of the series `name{labels}` (labels in the order prom-client writes them), or undefined when absent. */
function series(body: string, name: string, labels: string): number | undefined {
  const prefix = labels === "" ? `${name} ` : `${name}{${labels}} `;
  const line = body.split("\n").find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** The Stats response as the wire carries it (the SDK's stats() returns namespaces only). */
async function rawStats(server: TestServer) {
  const raw = createClient(CacheService, server.server.address, credentials.createInsecure());
  try {
    return await raw.stats({});
  } finally {
    raw.close();
  }
}

/** The gRPC health status of `service` (grpc.health.v1 Check). */
async function healthOf(server: TestServer, service: string): Promise<string> {
  const Health = makeGenericClientConstructor(healthService, "Health");
  const client = new Health(server.server.address, credentials.createInsecure()) as unknown as Client & {
    check(req: { service: string }, done: (err: ServiceError | null, res?: { status: string }) => void): void;
  };
  try {
    return await new Promise((resolve, reject) => client.check({ service }, (err, res) => (err ? reject(err) : resolve(res!.status))));
  } finally {
    client.close();
  }
}

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("metrics endpoint", () => {
  it("counts calls by method and status code, with latency histograms per method", async () => {
    t = await startTestServer({ storage: "memory", metricsPort: 0 });
    await t.client.set("k", "v", { namespace: "m" });
    await t.client.get("k", { namespace: "m" });
    await t.client.get("missing", { namespace: "m" });
    const raw = createClient(CacheService, t.server.address, credentials.createInsecure());
    try {
      const failed = await raw.get({ namespace: "m", key: "" }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failed).toBeInstanceOf(RpcError);
      expect((failed as RpcError).code).toBe(status.INVALID_ARGUMENT);
    } finally {
      raw.close();
    }

    const body = await scrape(t);
    expect(series(body, "tiercache_rpc_requests_total", 'method="Get",code="OK"')).toBe(2);
    expect(series(body, "tiercache_rpc_requests_total", 'method="Get",code="INVALID_ARGUMENT"')).toBe(1);
    expect(series(body, "tiercache_rpc_requests_total", 'method="Set",code="OK"')).toBe(1);
    // Every method has its OK series from the start, so rate() works from the first scrape.
    expect(series(body, "tiercache_rpc_requests_total", 'method="Touch",code="OK"')).toBe(0);
    expect(body).toContain("# TYPE tiercache_rpc_requests_total counter");
    expect(body).toContain("# TYPE tiercache_rpc_duration_seconds histogram");
    for (const le of RPC_DURATION_BUCKETS) expect(series(body, "tiercache_rpc_duration_seconds_bucket", `le="${le}",method="Get"`)).toBeTypeOf("number");
    expect(series(body, "tiercache_rpc_duration_seconds_bucket", 'le="+Inf",method="Get"')).toBe(3);
    expect(series(body, "tiercache_rpc_duration_seconds_count", 'method="Get"')).toBe(3);
    expect(series(body, "tiercache_rpc_duration_seconds_bucket", 'le="+Inf",method="Delete"')).toBe(0);
    // Ratios belong in PromQL; the since-start ratio is gone.
    expect(body).not.toContain("tiercache_hit_ratio");
    expect(series(body, "tiercache_hits_total", 'namespace="m",tier="memory"')).toBe(1);
    // A memory-only server has no durable tier: no breaker or durable series at all.
    expect(body).not.toContain("tiercache_durable_breaker_state");
    expect(body).not.toContain("tiercache_durable_entries");
    expect(body).toMatch(/^tiercache_memory_budget_bytes \d+$/m);
    expect(body).toMatch(/^tiercache_memory_used_bytes \d+$/m);
    expect(body).toMatch(/^tiercache_memory_budget_evictions_total 0$/m);
  });

  it("counts the calls a LeaseSession carries (wrap's GetOrLease and Set) under their own methods", async () => {
    t = await startTestServer({ storage: "memory", metricsPort: 0 });
    expect(await t.client.wrap("w", () => "loaded", { namespace: "m", ttl: 60_000 })).toBe("loaded");
    await t.client.settled();
    const raw = createClient(CacheService, t.server.address, credentials.createInsecure());
    try {
      const answers = [];
      for await (const response of raw.leaseSession([{ id: 1n, call: { case: "releaseLease", value: { namespace: "m", key: "" } } }])) answers.push(response.result.case);
      expect(answers).toEqual(["ready", "error"]);
    } finally {
      raw.close();
    }
    const body = await scrape(t);
    expect(series(body, "tiercache_rpc_requests_total", 'method="GetOrLease",code="OK"')).toBe(1);
    expect(series(body, "tiercache_rpc_requests_total", 'method="Set",code="OK"')).toBe(1);
    expect(series(body, "tiercache_rpc_requests_total", 'method="ReleaseLease",code="INVALID_ARGUMENT"')).toBe(1);
    expect(series(body, "tiercache_rpc_duration_seconds_count", 'method="GetOrLease"')).toBe(1);
  });

  it("answers /healthz and /readyz while serving, and /status.json with the calls made", async () => {
    t = await startTestServer({ storage: "memory", metricsPort: 0 });
    const health = await http(t, "/healthz");
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ live: true });
    const ready = await http(t, "/readyz");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });

    await t.client.set("a", 1, { namespace: "s" });
    await t.client.get("a", { namespace: "s" });
    const report = (await (await http(t, "/status.json")).json()) as StatusReport;
    expect(report.totals.requests).toBe(2);
    expect(report.namespaces).toEqual([{ namespace: "s", entries: 1, bytes: expect.any(Number), hits: 1, misses: 0, sets: 1, degradedWrites: 0 }]);
    expect(report.storage).toBe("memory");
    expect(report.ready).toEqual({ ready: true });
    const page = await http(t, "/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(await page.text()).toContain("status.json");
    expect((await http(t, "/nope")).status).toBe(404);
  });

  it("keeps a namespace's counters (Prometheus and Stats) once it empties, and goes on counting when it is used again", async () => {
    t = await startTestServer({ storage: "memory", metricsPort: 0 });
    await t.client.set("k", "v", { namespace: "churn" });
    for (let i = 0; i < 10; i++) await t.client.get("k", { namespace: "churn" });
    await t.client.delete("k", { namespace: "churn" });
    expect(t.server.engine.namespaceCount).toBe(0);
    const body = await scrape(t);
    expect(series(body, "tiercache_hits_total", 'namespace="churn",tier="memory"')).toBe(10);
    expect(series(body, "tiercache_sets_total", 'namespace="churn",tier="memory"')).toBe(1);
    expect(series(body, "tiercache_deletes_total", 'namespace="churn",tier="memory"')).toBe(1);
    expect((await rawStats(t)).namespaces.map((ns) => ns.namespace)).toEqual(["churn"]);
    await t.client.set("k", "v", { namespace: "churn" });
    const later = await scrape(t);
    expect(series(later, "tiercache_hits_total", 'namespace="churn",tier="memory"')).toBe(10);
    expect(series(later, "tiercache_sets_total", 'namespace="churn",tier="memory"')).toBe(2);
  });

  it("shares one rendering of /metrics between concurrent scrapers and those within --metrics-max-age", async () => {
    t = await startTestServer({ storage: "memory", metricsPort: 0, metricsMaxAgeMs: 60_000 });
    for (let i = 0; i < 50; i++) await t.client.set("k", i, { namespace: `ns${i}` });
    const bodies = await Promise.all([scrape(t), scrape(t), scrape(t), scrape(t)]);
    const later = await scrape(t);
    for (const body of [...bodies, later]) expect(series(body, "tiercache_metrics_renders_total", "")).toBe(1);
    expect(new Set([...bodies, later]).size).toBe(1);
  });

  it("counts a Watch the client closes as CANCELLED on /metrics, but not as an error on the status page", async () => {
    t = await startTestServer({ storage: "memory", metricsPort: 0 });
    for (let i = 0; i < 3; i++) {
      const local = t.newClient({ localTier: true });
      await local.set("k", i, { namespace: "w" });
      await local.get("k", { namespace: "w" });
      local.close();
    }
    const body = await until(() => scrape(t!), (b) => series(b, "tiercache_rpc_requests_total", 'method="Watch",code="CANCELLED"') === 3, "the closed Watch streams to be counted");
    expect(series(body, "tiercache_rpc_requests_total", 'method="Watch",code="CANCELLED"')).toBe(3);
    const report = (await (await http(t, "/status.json")).json()) as StatusReport;
    expect(report.methods.find((m) => m.method === "Watch")).toEqual({ method: "Watch", total: 3, errors: 0 });
    expect(report.totals.errors).toBe(0);
  });

  it("sums the namespaces past --metrics-max-namespaces under namespace=\"_other\"", async () => {
    t = await startTestServer({ storage: "memory", metricsPort: 0, metricsMaxNamespaces: 2 });
    for (const name of ["n1", "n2", "n3", "n4"]) await t.client.set("k", 1, { namespace: name });
    const body = await scrape(t);
    const own = ["n1", "n2", "n3", "n4"].filter((name) => series(body, "tiercache_sets_total", `namespace="${name}",tier="memory"`) !== undefined);
    expect(own).toHaveLength(2);
    expect(series(body, "tiercache_sets_total", 'namespace="_other",tier="memory"')).toBe(2);
    expect(series(body, "tiercache_entries", 'namespace="_other",tier="memory"')).toBe(2);
  });

  it("reports the LMDB tier's real entries and bytes, and times durable calls", async () => {
    t = await startTestServer({ storage: "lmdb", metricsPort: 0 });
    const tier = t.server.engine.durableTier!;
    for (const key of ["a", "b", "c"]) await t.client.set(key, "x".repeat(2000), { namespace: "d" });
    const body = await scrape(t);
    expect(series(body, "tiercache_durable_entries", `tier="${tier}"`)).toBe(3);
    expect(series(body, "tiercache_durable_bytes", `tier="${tier}"`)).toBeGreaterThan(0);
    expect(series(body, "tiercache_durable_call_duration_seconds_count", `tier="${tier}",operation="set",outcome="ok"`)).toBe(3);
    expect(body).not.toContain("tiercache_durable_breaker_state");
    // The durable tier never evicts: no series that could never move.
    expect(body).toContain('tiercache_evictions_total{namespace="d",tier="memory",cause="size"} 0');
    expect(body).not.toContain(`tiercache_evictions_total{namespace="d",tier="${tier}"`);
    // The Stats RPC reports the same figures.
    const stats = await rawStats(t);
    expect(stats.durableEntries).toBe(3n);
    expect(stats.durableBytes).toBe(BigInt(series(body, "tiercache_durable_bytes", `tier="${tier}"`)!));

    await t.client.invalidateTags(["org:1"], { namespace: "d" });
    const later = await scrape(t);
    expect(series(later, "tiercache_tag_invalidations_total", 'namespace="d"')).toBe(1);
    expect(series(later, "tiercache_durable_call_duration_seconds_count", `tier="${tier}",operation="invalidateTags",outcome="ok"`)).toBe(1);
  });

  it("turns /readyz to 503 while draining, while /healthz stays 200", async () => {
    const durable = new FakeDurableTier(systemClock);
    t = await startTestServer({ storage: "memory", metricsPort: 0, shutdownGraceMs: 10_000 }, { durable });
    let release!: () => void;
    durable.gate = new Promise<void>((resolve) => (release = resolve));
    const inFlight = t.client.get("held", { namespace: "drain" });
    await until(async () => durable.calls.get, (n) => n === 1, "the read to reach the durable tier");
    const stopping = t.server.shutdown();
    const ready = await until(() => http(t!, "/readyz"), (res) => res.status === 503, "/readyz to turn 503");
    expect(await ready.json()).toEqual({ ready: false, reason: "draining" });
    expect((await http(t, "/healthz")).status).toBe(200);
    release();
    await inFlight;
    await stopping;
  });

  it("counts a call the server cut at its deadline ceiling as DEADLINE_EXCEEDED, and a cancelled call as CANCELLED, once each", async () => {
    const durable = new FakeDurableTier(systemClock);
    t = await startTestServer({ storage: "memory", metricsPort: 0, maxDeadlineMs: 1000 }, { durable });
    let release!: () => void;
    durable.gate = new Promise<void>((resolve) => (release = resolve));
    const raw = createClient(CacheService, t.server.address, credentials.createInsecure());
    try {
      // No client deadline: the server's --max-deadline ends the call while the handler still waits on the durable tier.
      const cut = await raw.get({ namespace: "late", key: "k" }).catch((err: unknown) => err);
      expect((cut as RpcError).code).toBe(status.DEADLINE_EXCEEDED);
      const abort = new AbortController();
      const cancelled = raw.get({ namespace: "late", key: "k2" }, { signal: abort.signal }).catch((err: unknown) => err);
      await until(async () => durable.calls.get, (n) => n === 2, "the second read to reach the durable tier");
      abort.abort();
      expect(((await cancelled) as RpcError).code).toBe(status.CANCELLED);
      const body = await until(() => scrape(t!), (b) => series(b, "tiercache_rpc_requests_total", 'method="Get",code="CANCELLED"') === 1, "the cancelled call to be counted");
      expect(series(body, "tiercache_rpc_requests_total", 'method="Get",code="DEADLINE_EXCEEDED"')).toBe(1);
    } finally {
      raw.close();
      release();
    }
    // The handlers finishing later do not count the calls again.
    await new Promise((r) => setTimeout(r, 100));
    const after = await scrape(t);
    expect(series(after, "tiercache_rpc_requests_total", 'method="Get",code="OK"')).toBe(0);
    expect(series(after, "tiercache_rpc_duration_seconds_count", 'method="Get"')).toBe(2);
  });

  it("counts a request grpc-js refuses before any handler (over --max-message-bytes) with the status it sent", async () => {
    t = await startTestServer({ storage: "memory", metricsPort: 0, maxMessageBytes: 64 * 1024, maxValueBytes: 32 * 1024 });
    const raw = createClient(CacheService, t.server.address, credentials.createInsecure());
    try {
      const refused = await raw.set({ namespace: "big", key: "k", value: new Uint8Array(128 * 1024) }).catch((err: unknown) => err);
      expect((refused as RpcError).code).toBe(status.RESOURCE_EXHAUSTED);
    } finally {
      raw.close();
    }
    const body = await until(() => scrape(t!), (b) => (series(b, "tiercache_rpc_duration_seconds_count", 'method="Set"') ?? 0) > 0, "the refused call to be counted");
    expect(series(body, "tiercache_rpc_requests_total", 'method="Set",code="RESOURCE_EXHAUSTED"')).toBe(1);
    expect(series(body, "tiercache_rpc_requests_total", 'method="Set",code="CANCELLED"')).toBeUndefined();
  });

  it("with Redis: shows the breaker state, omits durable sizes, and turns /readyz to 503 when Redis goes away", async () => {
    redis = await startTestRedis();
    t = await startTestServer({ storage: "redis", redisUrl: redis.url, redisTimeoutMs: 200, redisBreakerResetMs: 300, degradedWrites: true, metricsPort: 0 });
    await t.client.set("k", "v", { namespace: "r" });
    const body = await scrape(t);
    expect(series(body, "tiercache_durable_breaker_state", 'tier="redis",state="closed"')).toBe(1);
    expect(series(body, "tiercache_durable_breaker_state", 'tier="redis",state="open"')).toBe(0);
    expect(series(body, "tiercache_durable_breaker_state", 'tier="redis",state="half-open"')).toBe(0);
    // Redis cannot tell a prefix's size without a scan: nothing is reported rather than 0.
    expect(body).not.toContain("tiercache_durable_entries");
    expect(body).not.toContain("tiercache_durable_bytes");
    expect(series(body, "tiercache_durable_call_duration_seconds_count", 'tier="redis",operation="set",outcome="ok"')).toBe(1);
    const stats = await rawStats(t);
    expect(stats.durableEntries).toBeUndefined();
    expect(stats.durableBytes).toBeUndefined();
    expect((await http(t, "/readyz")).status).toBe(200);

    await redis.stop(true);
    redis = undefined;
    const ready = await until(() => http(t!, "/readyz"), (res) => res.status === 503, "/readyz to turn 503");
    const reason = ((await ready.json()) as { reason: string }).reason;
    expect(reason).toMatch(/^redis /);
    expect((await http(t, "/healthz")).status).toBe(200);

    // The durable health entry says the same as /readyz, also once the breaker is half-open with Redis still down.
    await until(() => healthOf(t!, DURABLE_HEALTH_NAME), (s) => s === "NOT_SERVING", "the durable health entry to turn NOT_SERVING");
    for (let i = 0; i < 15; i++) await t.client.get(`absent${i}`, { namespace: "r" }).catch(() => undefined);
    await until(async () => t!.server.durableBreaker(), (state) => state === "half-open", "the breaker to turn half-open");
    expect(await healthOf(t, DURABLE_HEALTH_NAME)).toBe("NOT_SERVING");
    expect((await http(t, "/readyz")).status).toBe(503);

    // A write while Redis is away is kept in memory only, and counted so.
    await t.client.set("k2", "v", { namespace: "r" });
    const after = await scrape(t);
    expect(series(after, "tiercache_degraded_writes_total", 'namespace="r"')).toBe(1);
    // Also in a namespace that holds nothing afterwards: its counters are listed from the archive.
    for (let i = 0; i < 5; i++) await t.client.set(`d${i}`, i, { namespace: "fresh" }).catch(() => undefined);
    await t.client.deleteMany(["d0", "d1", "d2", "d3", "d4"], { namespace: "fresh" }).catch(() => undefined);
    const degraded = (await rawStats(t)).namespaces.find((ns) => ns.namespace === "fresh")?.degradedWrites;
    expect(series(await scrape(t), "tiercache_degraded_writes_total", 'namespace="fresh"')).toBe(Number(degraded));
    expect(Number(degraded)).toBeGreaterThan(0);
    expect(series(after, "tiercache_durable_call_duration_seconds_count", 'tier="redis",operation="set",outcome="error"')).toBe(1);
  });
});
