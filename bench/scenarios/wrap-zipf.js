/**
 * Function-result caching on a Zipf(0.99) trace: CacheClient `wrap` against
 * bentocache getOrSet with a memory L1 (10k items) over the run's own Redis
 * as L2, sequential calls, 100k keys. Reports ops/s and how often the loader
 * ran; and, as information, the transport floors of bench/lib/wrap-floor.js
 * against the same baseline (what two unary calls per miss allow at best).
 */
import { importDist } from "../lib/paths.js";
import { startChild } from "../lib/child.js";
import { measured, unavailable } from "../lib/report.js";
import { wrapFloorRun } from "../lib/wrap-floor.js";
import { mulberry32, zipfSampler } from "../lib/prng.js";
import { fmt, median } from "../lib/stats.js";

const NAME = "wrap-zipf";

const FLOORS = [
  ["unary-2", "floor: bare grpc-js, per L1 miss one unary GET awaited + one unary SET in the background"],
  ["unary-1", "floor: bare grpc-js, per L1 miss one unary GET awaited, nothing written"],
  ["stream-2", "floor: bare grpc-js, per L1 miss GET awaited + SET as messages on one bidi stream"],
];

/** Runs `requests` calls of `client.wrap` over the Zipf trace; the trace starts cold (fresh prefix). */
async function wrapRun(CacheClient, address, { requests, keySpace, skew, l1Items, prefix }) {
  const client = new CacheClient({ address, localTier: { maxEntries: l1Items, maxBytes: 256 * 1024 * 1024, maxTtlMs: 3_600_000 } });
  try {
    const sample = zipfSampler(keySpace, skew, mulberry32(99));
    const trace = Array.from({ length: requests }, () => `${prefix}:${sample()}`);
    const payload = { id: 1, body: "x".repeat(1000) };
    let loads = 0;
    const loader = async () => {
      loads++;
      return payload;
    };
    for (let i = 0; i < Math.min(2000, requests); i++) await client.wrap(`warm:${trace[i]}`, loader, { ttl: 3_600_000 });
    loads = 0;
    const t0 = performance.now();
    for (let i = 0; i < requests; i++) await client.wrap(trace[i], loader, { ttl: 3_600_000 });
    const ms = performance.now() - t0;
    return { opsPerSec: (requests / ms) * 1000, loads, requests };
  } finally {
    client.close();
  }
}

export default {
  name: NAME,
  description: "CacheClient wrap() with a 10k local tier on Zipf(0.99) vs bentocache getOrSet, memory L1 (10k) over Redis L2",
  async run(ctx) {
    const subject = "CacheClient wrap (local tier 10k, server over Redis), Zipf(0.99)";
    const baseline = "bentocache getOrSet (L1 memory + L2 Redis)";
    const redis = await ctx.redis();
    if (!redis) return { rows: [unavailable({ scenario: NAME, subject, baseline, reason: "no redis-server on PATH" })] };
    const { CacheClient } = await importDist("client/index.js");
    const bento = await startChild("redis-load", { url: redis.url });
    const server = await startChild("tiercache-server", { redisUrl: redis.url }, { profile: ctx.profile, label: `${NAME}-tiercache` });
    const echo = await startChild("echo-server", { redisUrl: redis.url, unaryResponseBytes: 1100 });
    const floorRatios = new Map(FLOORS.map(([mode]) => [mode, []]));
    const ratios = [];
    const subjectRuns = [];
    const baselineRuns = [];
    try {
      const shape = { requests: ctx.quick ? 500 : 100_000, keySpace: 100_000, skew: 0.99, l1Items: 10_000 };
      for (let round = 0; round < (ctx.quick ? 1 : 3); round++) {
        // Fresh key prefixes per round: every round starts with empty tiers. Order alternates (ABBA over rounds).
        const stamp = `${Date.now()}r${round}`;
        const runBento = () => bento.call("bento", { ...shape, prefix: `bento${stamp}` });
        const runWrap = () => wrapRun(CacheClient, server.info.address, { ...shape, prefix: `wrap${stamp}` });
        const [b, w] = round % 2 === 0 ? [await runBento(), await runWrap()] : await (async () => { const w2 = await runWrap(); return [await runBento(), w2]; })();
        baselineRuns.push(b);
        subjectRuns.push(w);
        ratios.push(w.opsPerSec / b.opsPerSec);
        const floors = [];
        for (const [mode] of round % 2 === 0 ? FLOORS : [...FLOORS].reverse()) {
          const opsPerSec = await wrapFloorRun(echo.info.address, { ...shape, prefix: `${mode}${stamp}` }, mode);
          floorRatios.get(mode).push(opsPerSec / b.opsPerSec);
          floors.push(`${mode} ${fmt(opsPerSec)}`);
        }
        ctx.log(`  round ${round + 1}: wrap ${fmt(w.opsPerSec)} ops/s (loader ${w.loads}), bentocache ${fmt(b.opsPerSec)} ops/s (loader ${b.loads}); floors ${floors.join(", ")} ops/s`);
      }
    } finally {
      await bento.stop();
      await server.stop();
      await echo.stop();
    }
    const share = (runs) => ((median(runs.map((r) => r.loads / r.requests)) * 100).toFixed(1));
    return {
      rows: [
        measured({
          scenario: NAME,
          subject,
          baseline,
          ratios,
          goal: { op: ">=", value: 0.3 },
          context: `${fmt(median(subjectRuns.map((r) => r.opsPerSec)))} vs ${fmt(median(baselineRuns.map((r) => r.opsPerSec)))} ops/s; loader ran for ${share(subjectRuns)}% vs ${share(baselineRuns)}% of calls`,
        }),
        ...FLOORS.map(([mode, subject]) =>
          measured({ scenario: NAME, subject, baseline, ratios: floorRatios.get(mode), context: "transport floor, no goal (bench/lib/wrap-floor.js)" }),
        ),
      ],
    };
  },
};
