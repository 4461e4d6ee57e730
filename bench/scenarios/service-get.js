/**
 * (1) Memory-tier Get through the service: the real server (storage
 * "memory", 10k keys of 1 KiB, every Get a hit) called through CacheClient
 * (protobuf both ways), against a bare grpc-js echo server answering with
 * the same number of bytes; also the same Get from a bare grpc-js client,
 * which tells the server's share of the gap. Server, echo and load generator are three
 * processes; each round measures both
 * servers in interleaved ABBA slices.
 */
import { startChild } from "../lib/child.js";
import { measured } from "../lib/report.js";
import { messageSizes } from "../lib/sizes.js";
import { fmt, median, us } from "../lib/stats.js";
import { measureUnary } from "../lib/unary-pair.js";

const NAME = "service-get";

export default {
  name: NAME,
  description: "memory-tier Get via the service (protobuf, 1 KiB) vs grpc-js echo: latency, throughput, server CPU/call",
  async run(ctx) {
    const sizes = await messageSizes();
    const [echo, tc] = await Promise.all([
      startChild("echo-server", { unaryResponseBytes: sizes.getResponse }, { profile: ctx.profile, label: `${NAME}-echo` }),
      startChild("tiercache-server", { storage: "memory" }, { profile: ctx.profile, label: `${NAME}-tiercache` }),
    ]);
    const servers = { echo, tc, "tc-raw": tc };
    const load = await startChild("grpc-load", {
      tcAddress: servers.tc.info.address,
      echoAddress: servers.echo.info.address,
      getRequestBytes: sizes.getRequest,
      keys: ctx.quick ? 1000 : 10_000,
    }, { profile: ctx.profile, label: `${NAME}-load` });
    try {
      const results = await measureUnary(ctx, load, servers, ["echo", "tc", "tc-raw"]);
      const per = (pick) => results.tc.map((t, i) => pick(t) / pick(results.echo[i]));
      const med = (target, pick) => median(results[target].map(pick));
      const pair = (pick, f) => `${f(med("tc", pick))} vs ${f(med("echo", pick))}`;
      const subject = "tiercache Get (CacheClient, memory tier)";
      const baseline = "grpc-js echo, same bytes";
      return {
        rows: [
          measured({ scenario: NAME, subject: `${subject}: p50, sequential`, baseline, ratios: per((r) => r.seq.p50), goal: { op: "<=", value: 1.15 }, context: `p50 ${pair((r) => r.seq.p50, us)}` }),
          measured({ scenario: NAME, subject: `${subject}: p99, sequential`, baseline, ratios: per((r) => r.seq.p99), goal: { op: "<=", value: 1.5 }, context: `p99 ${pair((r) => r.seq.p99, us)}` }),
          measured({ scenario: NAME, subject: `${subject}: p99, 10 in flight`, baseline, ratios: per((r) => r.c10.p99), goal: { op: "<=", value: 1.3 }, context: `p99 ${pair((r) => r.c10.p99, us)}` }),
          measured({ scenario: NAME, subject: `${subject}: throughput, 100 in flight`, baseline, ratios: per((r) => r.c100.opsPerSec), goal: { op: ">=", value: 0.9 }, context: `${pair((r) => r.c100.opsPerSec, fmt)} ops/s` }),
          measured({ scenario: NAME, subject: `${subject}: server CPU per call`, baseline, ratios: per((r) => r.cpuPerCall), goal: { op: "<=", value: 1.25 }, context: `${pair((r) => r.cpuPerCall, (v) => v.toFixed(0))} µs/call (at 100 in flight)` }),
          // Diagnostic: the same Get from a bare grpc-js client (no client-side protobuf or serializer): the server's share.
          measured({ scenario: NAME, subject: "tiercache Get, bare grpc-js client: p50, sequential", baseline, ratios: results["tc-raw"].map((t, i) => t.seq.p50 / results.echo[i].seq.p50), context: `p50 ${us(med("tc-raw", (r) => r.seq.p50))} vs ${us(med("echo", (r) => r.seq.p50))} (server's share of the p50 gap)` }),
        ],
      };
    } finally {
      await load.stop();
      await Promise.all([servers.echo.stop(), servers.tc.stop()]);
    }
  },
};
