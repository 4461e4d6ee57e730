/**
 * (2) Bulk get of 1,000 keys (1 KiB values, all memory-tier hits) over one
 * StreamGet call: keys batched 500 per message (CacheClient's default)
 * against one key per message, and against a bare grpc-js bidi echo that
 * moves the same bytes: the same request messages, each answered with one
 * packed message of the bytes tiercache answers it with. A second echo
 * that first raises glibc's malloc thresholds as tiercache's server does at
 * start (server/malloc-thresholds.ts) gives an information row: how much of
 * the ratio that alone accounts for. A third echo builds each response from
 * stored 1 KiB values, copying as many per request as tiercache answers
 * with (bidiCopies in echo-server.js): what any server of stored values must
 * do on top of the packed echo. A fourth echo answers each request in
 * messages of at most STREAM_MESSAGE_BYTES (128 KiB), as tiercache's
 * StreamGet does (5 per 500-key request at these sizes, as tiercache sends):
 * what that message shape alone is worth to the transport. The three extra echoes
 * each have a load client of their own. So that the copying echo can be set
 * against the packed echo measured the same way, the packed echo is also
 * measured through a load client of its own: a "floor" row compares the two
 * (what copying stored values alone costs, which no server of stored values
 * avoids), and another row shows what a load client of its own alone moves.
 * Last, the least StreamGet server on tiercache's stack
 * (bench/children/stream-min-server.js: decode, an lru-cache lookup per key,
 * tiercache's own response writer), through the shared load client as
 * tiercache is: what the stack itself allows, and tiercache against it.
 */
import { importDist } from "../lib/paths.js";
import { startChild } from "../lib/child.js";
import { measured } from "../lib/report.js";
import { cpuMicros, roundOrder } from "../lib/rounds.js";
import { messageSizes } from "../lib/sizes.js";
import { fmt, median } from "../lib/stats.js";

const NAME = "stream-get";
const KEYS = 1000;
const BATCH = 500;

export default {
  name: NAME,
  description: "StreamGet of 1,000 keys: batched messages vs one message per key vs packed grpc-js echo (and, as information, echoes with raised malloc thresholds, copying stored values, or answering in 128 KiB messages)",
  async run(ctx) {
    // Quick (smoke) mode moves fewer keys: one message per key is slow by design.
    const keys = ctx.quick ? 200 : KEYS;
    const sizes = await messageSizes({ batch: BATCH });
    const copies = { values: keys, valueBytes: 1024, perMessage: Math.min(BATCH, keys) };
    const { STREAM_MESSAGE_BYTES } = await importDist("server/rpc/cache-service.js");
    const [echo, echoRaised, echoCopies, echoSplit, tc, streamMin] = await Promise.all([
      startChild("echo-server", { bidiResponseBytes: sizes.streamGetResponse }, { profile: ctx.profile, label: `${NAME}-echo` }),
      startChild("echo-server", { bidiResponseBytes: sizes.streamGetResponse, raiseMallocThresholds: true }, { profile: ctx.profile, label: `${NAME}-echo-raised` }),
      startChild("echo-server", { bidiResponseBytes: sizes.streamGetResponse, bidiCopies: copies }, { profile: ctx.profile, label: `${NAME}-echo-copies` }),
      startChild("echo-server", { bidiResponseBytes: sizes.streamGetResponse, bidiSplitBytes: STREAM_MESSAGE_BYTES }, { profile: ctx.profile, label: `${NAME}-echo-split` }),
      startChild("tiercache-server", { storage: "memory" }, { profile: ctx.profile, label: `${NAME}-tiercache` }),
      startChild("stream-min-server", {}, { profile: ctx.profile, label: `${NAME}-stream-min` }),
    ]);
    const loadConfig = { keys: ctx.quick ? keys : 10_000, bulkKeys: keys, bulkBatch: BATCH, bulkRequestBytes: sizes.streamGetRequest };
    const load = await startChild("grpc-load", { ...loadConfig, tcAddress: tc.info.address, echoAddress: echo.info.address, stackMinAddress: streamMin.info.address });
    const loadRaised = await startChild("grpc-load", { ...loadConfig, echoAddress: echoRaised.info.address });
    const loadCopies = await startChild("grpc-load", { ...loadConfig, echoAddress: echoCopies.info.address });
    const loadSplit = await startChild("grpc-load", { ...loadConfig, echoAddress: echoSplit.info.address, echoResponsesPerMessage: Math.ceil(sizes.streamGetResponse / STREAM_MESSAGE_BYTES) });
    // The packed echo once more, through a load client of its own, as the information echoes are measured: the floor rows' baseline.
    const loadPacked = await startChild("grpc-load", { ...loadConfig, echoAddress: echo.info.address });
    const server = { "tc-batched": tc, "tc-perkey": tc, "stack-min-batched": streamMin, "echo-packed": echo, "echo-packed-own": echo, "echo-raised": echoRaised, "echo-copies": echoCopies, "echo-split": echoSplit };
    const ownLoad = { "echo-packed-own": loadPacked, "echo-raised": loadRaised, "echo-copies": loadCopies, "echo-split": loadSplit };
    const q = ctx.quick;
    const run = async (target, durationMs, quickOps) => {
      const c0 = await server[target].call("cpu");
      const [client, bulkTarget] = ownLoad[target] ? [ownLoad[target], "echo-packed"] : [load, target];
      const r = await client.call("bulk", { target: bulkTarget, ...(q ? { durationMs: 60_000, maxOps: quickOps } : { durationMs }) });
      r.cpuPerOp = cpuMicros(c0, await server[target].call("cpu")) / r.calls;
      return r;
    };
    try {
      const targets = ["echo-packed", "tc-batched", "tc-perkey", "echo-raised", "echo-copies", "echo-split", "echo-packed-own", "stack-min-batched"];
      for (const target of targets) {
        ctx.log(`  warm-up ${target}`);
        await run(target, 3000, 1);
      }
      const results = Object.fromEntries(targets.map((t) => [t, []]));
      for (let round = 0; round < ctx.rounds; round++) {
        // Two short slices per target per round, ABBA-like, so drifts hit every target alike.
        const order = roundOrder(round, targets);
        const slices = q ? [order] : [order, [...order].reverse()];
        const acc = Object.fromEntries(targets.map((t) => [t, { calls: 0, elapsedMs: 0, cpu: 0 }]));
        for (const slice of slices) {
          for (const target of slice) {
            const r = await run(target, 700, 1);
            acc[target].calls += r.calls;
            acc[target].elapsedMs += r.elapsedMs;
            acc[target].cpu += r.cpuPerOp * r.calls;
          }
        }
        for (const t of targets) results[t].push({ msPerOp: acc[t].elapsedMs / acc[t].calls, cpuPerOp: acc[t].cpu / acc[t].calls });
        ctx.log(`  round ${round + 1}: ms/op ${targets.map((t) => `${t} ${results[t].at(-1).msPerOp.toFixed(2)}`).join(", ")}`);
      }
      const med = (t, k) => median(results[t].map((r) => r[k]));
      const keysPerSec = (t) => fmt((keys / med(t, "msPerOp")) * 1000);
      const cpuPerKey = (t) => (med(t, "cpuPerOp") / keys).toFixed(1);
      /** Time of one target against another, per round (a row without a goal). */
      const timeRow = (subject, target, baseline, against, context) =>
        measured({
          scenario: NAME,
          subject,
          baseline,
          ratios: results[target].map((r, i) => r.msPerOp / results[against][i].msPerOp),
          context: `${med(target, "msPerOp").toFixed(2)} vs ${med(against, "msPerOp").toFixed(2)} ms; ${context}`,
        });
      /** tiercache's time against one of the information echoes. */
      const informationAgainst = (target, baseline) =>
        timeRow(`StreamGet ${keys} keys, ${BATCH} keys/message: time`, "tc-batched", baseline, target, `server CPU ${cpuPerKey("tc-batched")} vs ${cpuPerKey(target)} µs/key`);
      const packedOwn = "the packed echo through a load client of its own";
      const leastServer = "the least StreamGet server on this stack (bench/children/stream-min-server.js)";
      return {
        rows: [
          measured({
            scenario: NAME,
            subject: `StreamGet ${keys} keys, ${BATCH} keys/message`,
            baseline: "StreamGet, 1 key/message",
            ratios: results["tc-batched"].map((r, i) => results["tc-perkey"][i].msPerOp / r.msPerOp),
            goal: { op: ">=", value: 2.5 },
            context: `speed-up; ${keysPerSec("tc-batched")} vs ${keysPerSec("tc-perkey")} keys/s`,
          }),
          measured({
            scenario: NAME,
            subject: `StreamGet ${keys} keys, ${BATCH} keys/message: time`,
            baseline: "grpc-js bidi echo, same bytes, 1 message per request",
            ratios: results["tc-batched"].map((r, i) => r.msPerOp / results["echo-packed"][i].msPerOp),
            goal: { op: "<=", value: 1.3 },
            context: `${med("tc-batched", "msPerOp").toFixed(2)} vs ${med("echo-packed", "msPerOp").toFixed(2)} ms per ${keys} keys`,
          }),
          measured({
            scenario: NAME,
            subject: `StreamGet ${keys} keys, ${BATCH} keys/message: server CPU`,
            baseline: "grpc-js bidi echo, same bytes, 1 message per request",
            ratios: results["tc-batched"].map((r, i) => r.cpuPerOp / results["echo-packed"][i].cpuPerOp),
            context: `${cpuPerKey("tc-batched")} vs ${cpuPerKey("echo-packed")} µs/key`,
          }),
          informationAgainst("echo-raised", "the same echo, malloc thresholds raised as tiercache's server does"),
          informationAgainst("echo-copies", "an echo that copies 1 KiB stored values into each message"),
          informationAgainst("echo-split", "the packed echo answering in 128 KiB messages, as tiercache does"),
          timeRow("the packed echo through a load client of its own: time", "echo-packed-own", "grpc-js bidi echo, same bytes, 1 message per request", "echo-packed", "the same server measured both ways: what a load client of its own alone moves"),
          timeRow("floor: an echo that copies 1 KiB stored values into each message: time", "echo-copies", packedOwn, "echo-packed-own", "both through a load client of their own: what copying stored values alone costs"),
          timeRow(`${leastServer}: time`, "stack-min-batched", "grpc-js bidi echo, same bytes, 1 message per request", "echo-packed", `server CPU ${cpuPerKey("stack-min-batched")} vs ${cpuPerKey("echo-packed")} µs/key; through the shared load client, as tiercache: what the stack itself allows`),
          timeRow(`StreamGet ${keys} keys, ${BATCH} keys/message: time`, "tc-batched", leastServer, "stack-min-batched", `server CPU ${cpuPerKey("tc-batched")} vs ${cpuPerKey("stack-min-batched")} µs/key; what tiercache takes beyond it`),
        ],
      };
    } finally {
      await Promise.all([load.stop(), loadRaised.stop(), loadCopies.stop(), loadSplit.stop(), loadPacked.stop()]);
      await Promise.all([echo.stop(), echoRaised.stop(), echoCopies.stop(), echoSplit.stop(), tc.stop(), streamMin.stop()]);
    }
  },
};
