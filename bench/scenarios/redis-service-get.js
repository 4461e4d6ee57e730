/**
 * Redis-tier Get via the service (pending the Redis tier): the tiercache
 * server over a Redis tier, memory tier shrunk to 1 entry so that Gets read
 * Redis, against a bare grpc-js echo server whose handler awaits one ioredis
 * GET of a 1 KiB value. The baseline is measured now; the subject only once
 * RedisTier exists. Information rows compare both with a third server, the
 * same echo whose GET goes through the failure policy the architecture asks
 * of a remote tier (opossum breaker, per-attempt timeout, the call's
 * cancellation: echo-server's `guardedGet`), which tells how much of the
 * goals' margin that policy alone takes. Two more rows call the tiercache
 * server from a bare grpc-js client, as the echoes are called (request
 * pre-encoded, response not decoded): the server's share of each gap. And a
 * fourth server, the least one on tiercache's stack that does a Redis-tier
 * Get's work (bench/children/stack-min-server.js), called through the same
 * CacheClient as tiercache: how close to the echo the stack itself gets.
 */
import { startChild } from "../lib/child.js";
import { measured, unavailable } from "../lib/report.js";
import { redisTierAvailable } from "../lib/redis-subject.js";
import { preloadRedis } from "../lib/seeded-redis.js";
import { messageSizes } from "../lib/sizes.js";
import { fmt, median, us } from "../lib/stats.js";
import { leastServerRows, measureUnary } from "../lib/unary-pair.js";

const NAME = "redis-service-get";
const KEYS = 10_000;
const QUICK_KEYS = 200;

export default {
  name: NAME,
  description: "Redis-tier Get via the service vs grpc-js echo awaiting one ioredis GET (subject measured once RedisTier exists)",
  async run(ctx) {
    const subject = "tiercache Get (Redis tier, memory tier 1 entry)";
    const baseline = "grpc-js echo + ioredis GET";
    const redis = await ctx.redis();
    if (!redis) return { rows: [unavailable({ scenario: NAME, subject, baseline, reason: "no redis-server on PATH" })] };
    const hasTier = await redisTierAvailable();
    const sizes = await messageSizes();
    await preloadRedis(redis.url, ctx.quick ? QUICK_KEYS : KEYS);
    const servers = { echo: await startChild("echo-server", { unaryResponseBytes: sizes.getResponse, redisUrl: redis.url }, { profile: ctx.profile, label: `${NAME}-echo` }) };
    servers["echo-guarded"] = await startChild("echo-server", { unaryResponseBytes: sizes.getResponse, redisUrl: redis.url, guardedGet: true }, { profile: ctx.profile, label: `${NAME}-echo-guarded` });
    if (hasTier) {
      servers.tc = await startChild("tiercache-server", { storage: "memory", redisUrl: redis.url, memoryMaxEntries: 1 }, { profile: ctx.profile, label: `${NAME}-tiercache` });
      // The same server from a bare grpc-js client (request pre-encoded, response not decoded), as the echoes are called.
      servers["tc-raw"] = servers.tc;
      servers["stack-min"] = await startChild("stack-min-server", { redisUrl: redis.url }, { profile: ctx.profile, label: `${NAME}-stack-min` });
    }
    const load = await startChild("grpc-load", {
      echoAddress: servers.echo.info.address,
      guardedAddress: servers["echo-guarded"].info.address,
      tcAddress: servers.tc?.info.address,
      stackMinAddress: servers["stack-min"]?.info.address,
      redisKeys: true,
      keys: ctx.quick ? QUICK_KEYS : KEYS,
    });
    try {
      const targets = hasTier ? ["echo", "tc", "echo-guarded", "tc-raw", "stack-min"] : ["echo", "echo-guarded"];
      const results = await measureUnary(ctx, load, servers, targets);
      const med = (t, pick) => median(results[t].map(pick));
      // Goals (issue 13): p50 <=1.15x, throughput >=0.85x of echo + one ioredis GET.
      const metrics = [
        ["p50, sequential", (r) => r.seq.p50, us, { op: "<=", value: 1.15 }],
        ["p99, sequential", (r) => r.seq.p99, us],
        ["p99, 10 in flight", (r) => r.c10.p99, us],
        ["throughput, 100 in flight", (r) => r.c100.opsPerSec, (v) => `${fmt(v)} ops/s`, { op: ">=", value: 0.85 }],
        ["server CPU per call", (r) => r.cpuPerCall, (v) => `${v.toFixed(0)} µs`],
      ];
      const metric = (label) => metrics.find(([l]) => l === label);
      const [p50, throughput, serverCpu] = ["p50, sequential", "throughput, 100 in flight", "server CPU per call"].map(metric);
      const ratio = (a, b, pick) => results[a].map((t, i) => pick(t) / pick(results[b][i]));
      const guarded = "the same echo, its GET through opossum + timeout + cancellation";
      const floorRows = [p50, throughput, serverCpu].flatMap(([label, pick, f]) => [
        measured({ scenario: NAME, subject: `floor: ${guarded}: ${label}`, baseline, ratios: ratio("echo-guarded", "echo", pick), context: `${f(med("echo-guarded", pick))} vs ${f(med("echo", pick))}; what the failure policy alone costs` }),
        ...(hasTier ? [measured({ scenario: NAME, subject: `${subject}: ${label}`, baseline: guarded, ratios: ratio("tc", "echo-guarded", pick), context: `${f(med("tc", pick))} vs ${f(med("echo-guarded", pick))}; the rest of tiercache's Get` })] : []),
      ]);
      // Diagnostic: how much of each gap the client side makes (CacheClient's protobuf and serializer on the load child's share of the two cores).
      const bareRows = hasTier
        ? [p50, throughput].map(([label, pick, f]) =>
            measured({ scenario: NAME, subject: `tiercache Get (Redis tier), bare grpc-js client: ${label}`, baseline, ratios: ratio("tc-raw", "echo", pick), context: `${f(med("tc-raw", pick))} vs ${f(med("echo", pick))}; the server's share, called as the echoes are` }),
          )
        : [];
      // Information: the least server on this stack against the goals' baseline, and tiercache against it.
      const leastServer = "the least server on this stack (bench/children/stack-min-server.js)";
      const stackRows = hasTier ? leastServerRows({ scenario: NAME, subject, baseline, leastServer, results, metrics: [p50, throughput, serverCpu] }) : [];
      return {
        rows: [
          ...metrics.map(([label, pick, f, goal]) =>
            hasTier
              ? measured({ scenario: NAME, subject: `${subject}: ${label}`, baseline, ratios: ratio("tc", "echo", pick), ...(goal && { goal }), context: `${f(med("tc", pick))} vs ${f(med("echo", pick))}` })
              : unavailable({ scenario: NAME, subject: `${subject}: ${label}`, baseline, context: `baseline ${f(med("echo", pick))}` }),
          ),
          ...floorRows,
          ...bareRows,
          ...stackRows,
        ],
      };
    } finally {
      await load.stop();
      await Promise.all([...new Set(Object.values(servers))].map((s) => s.stop()));
    }
  },
};
