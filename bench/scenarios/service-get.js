/**
 * (1) Memory-tier Get through the service: the real server (storage
 * "memory", 10k keys of 1 KiB, every Get a hit) called through CacheClient
 * (protobuf both ways), against a bare grpc-js echo server answering with
 * the same number of bytes; also the same Get from a bare grpc-js client,
 * which tells the server's share of the gap; and, for information, the least
 * server on tiercache's stack that does a memory-tier Get's work
 * (bench/children/stack-min-server.js without Redis), through the same
 * CacheClient: what the stack itself allows; and the echo called on the
 * channel as CacheClient calls (core/channel-unary-call.ts), for the rows
 * that tell how much of the ratio that call path is. Each server and the load
 * generator are processes of their own; each round measures the servers in
 * interleaved slices.
 */
import { startChild } from "../lib/child.js";
import { measured } from "../lib/report.js";
import { messageSizes } from "../lib/sizes.js";
import { fmt, median, us } from "../lib/stats.js";
import { leastServerRows, measureUnary } from "../lib/unary-pair.js";

const NAME = "service-get";

export default {
  name: NAME,
  description: "memory-tier Get via the service (protobuf, 1 KiB) vs grpc-js echo: latency, throughput, server CPU/call",
  async run(ctx) {
    const sizes = await messageSizes();
    const [echo, tc, stackMin] = await Promise.all([
      startChild("echo-server", { unaryResponseBytes: sizes.getResponse }, { profile: ctx.profile, label: `${NAME}-echo` }),
      startChild("tiercache-server", { storage: "memory" }, { profile: ctx.profile, label: `${NAME}-tiercache` }),
      startChild("stack-min-server", {}, { profile: ctx.profile, label: `${NAME}-stack-min` }),
    ]);
    const servers = { echo, "echo-channel": echo, tc, "tc-raw": tc, "stack-min": stackMin };
    const load = await startChild("grpc-load", {
      tcAddress: servers.tc.info.address,
      echoAddress: servers.echo.info.address,
      stackMinAddress: servers["stack-min"].info.address,
      getRequestBytes: sizes.getRequest,
      keys: ctx.quick ? 1000 : 10_000,
    }, { profile: ctx.profile, label: `${NAME}-load` });
    try {
      const results = await measureUnary(ctx, load, servers, ["echo", "echo-channel", "tc", "tc-raw", "stack-min"]);
      const ratio = (a, b, pick) => results[a].map((t, i) => pick(t) / pick(results[b][i]));
      const per = (pick) => ratio("tc", "echo", pick);
      const med = (target, pick) => median(results[target].map(pick));
      const pair = (pick, f) => `${f(med("tc", pick))} vs ${f(med("echo", pick))}`;
      const subject = "tiercache Get (CacheClient, memory tier)";
      const baseline = "grpc-js echo, same bytes";
      // Information: the least server on this stack against the goals' baseline, and tiercache against it.
      const leastServer = "the least server on this stack (bench/children/stack-min-server.js, memory)";
      const stackRows = leastServerRows({
        scenario: NAME,
        subject,
        baseline,
        leastServer,
        results,
        metrics: [
          ["p50, sequential", (r) => r.seq.p50, us],
          ["throughput, 100 in flight", (r) => r.c100.opsPerSec, (v) => `${fmt(v)} ops/s`],
          ["server CPU per call", (r) => r.cpuPerCall, (v) => `${v.toFixed(0)} µs`],
        ],
      });
      return {
        rows: [
          measured({ scenario: NAME, subject: `${subject}: p50, sequential`, baseline, ratios: per((r) => r.seq.p50), goal: { op: "<=", value: 1.15 }, context: `p50 ${pair((r) => r.seq.p50, us)}` }),
          measured({ scenario: NAME, subject: `${subject}: p99, sequential`, baseline, ratios: per((r) => r.seq.p99), goal: { op: "<=", value: 1.5 }, context: `p99 ${pair((r) => r.seq.p99, us)}` }),
          measured({ scenario: NAME, subject: `${subject}: p99, 10 in flight`, baseline, ratios: per((r) => r.c10.p99), goal: { op: "<=", value: 1.3 }, context: `p99 ${pair((r) => r.c10.p99, us)}` }),
          measured({ scenario: NAME, subject: `${subject}: throughput, 100 in flight`, baseline, ratios: per((r) => r.c100.opsPerSec), goal: { op: ">=", value: 0.9 }, context: `${pair((r) => r.c100.opsPerSec, fmt)} ops/s` }),
          measured({ scenario: NAME, subject: `${subject}: server CPU per call`, baseline, ratios: per((r) => r.cpuPerCall), goal: { op: "<=", value: 1.25 }, context: `${pair((r) => r.cpuPerCall, (v) => v.toFixed(0))} µs/call (at 100 in flight)` }),
          // Diagnostic: the same Get from a bare grpc-js client (no client-side protobuf or serializer): the server's share.
          measured({ scenario: NAME, subject: "tiercache Get, bare grpc-js client: p50, sequential", baseline, ratios: results["tc-raw"].map((t, i) => t.seq.p50 / results.echo[i].seq.p50), context: `p50 ${us(med("tc-raw", (r) => r.seq.p50))} vs ${us(med("echo", (r) => r.seq.p50))} (server's share of the p50 gap)` }),
          // Diagnostic: at 100 in flight the load process's one thread is the busier of the two processes, so its CPU per call bounds the throughput.
          // Diagnostic: CacheClient makes its unary calls on the channel (core/channel-unary-call.ts), below the layers the
          // echo's makeUnaryRequest goes through; the same echo called that way is the least a grpc-js client does per call.
          measured({ scenario: NAME, subject: `${subject}: throughput, 100 in flight`, baseline: "the same echo, called on the channel as CacheClient calls", ratios: ratio("tc", "echo-channel", (r) => r.c100.opsPerSec), context: `${fmt(med("tc", (r) => r.c100.opsPerSec))} vs ${fmt(med("echo-channel", (r) => r.c100.opsPerSec))} ops/s` }),
          measured({ scenario: NAME, subject: `${subject}: p50, sequential`, baseline: "the same echo, called on the channel as CacheClient calls", ratios: ratio("tc", "echo-channel", (r) => r.seq.p50), context: `p50 ${us(med("tc", (r) => r.seq.p50))} vs ${us(med("echo-channel", (r) => r.seq.p50))}` }),
          ...["echo-channel", "tc", "tc-raw", "stack-min"].map((target) =>
            measured({ scenario: NAME, subject: `load process CPU per call, 100 in flight: ${target}`, baseline: "the same, calling the echo", ratios: ratio(target, "echo", (r) => r.loadCpuPerCall), context: `${med(target, (r) => r.loadCpuPerCall).toFixed(0)} vs ${med("echo", (r) => r.loadCpuPerCall).toFixed(0)} µs/call` }),
          ),
          ...stackRows,
        ],
      };
    } finally {
      await load.stop();
      await Promise.all([servers.echo.stop(), servers.tc.stop(), servers["stack-min"].stop()]);
    }
  },
};
