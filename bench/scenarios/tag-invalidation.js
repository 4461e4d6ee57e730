/**
 * InvalidateTags latency against the number of values carrying the tags: the
 * real server (LMDB, and Redis when redis-server is on PATH) holds 1k, then
 * 1M values written with StreamSet, each tagged with the 16 tags of its set;
 * the InvalidateTags call of one of those tags is timed from CacheClient
 * (p50 over the calls of a round; the first call of each set hides all of
 * its values). Tags are invalidated lazily (an epoch per tag, checked on
 * reads), so the call should not grow with the number of values: the goal
 * is a ratio of about 1 (1M vs 1k) and a p50 under 5 ms.
 */
import { startChild } from "../lib/child.js";
import { importDist } from "../lib/paths.js";
import { measured, unavailable } from "../lib/report.js";
import { fmt, median } from "../lib/stats.js";

const NAME = "tag-invalidation";
const TAGS_PER_VALUE = 16;
const BUDGET_MS = 5;

/** Writes `count` small values tagged `${set}-t0..15` in the namespace. */
async function fill(client, namespace, set, count) {
  const tags = Array.from({ length: TAGS_PER_VALUE }, (_, i) => `${set}-t${i}`);
  const perStream = 100_000; // a stream is one call: keep each well within the server's max-deadline
  for (let start = 0; start < count; start += perStream) {
    async function* entries() {
      for (let i = start; i < Math.min(count, start + perStream); i++) yield [`${set}:${i}`, i];
    }
    await client.streamSet(entries(), { namespace, tags, batchSize: 1000 });
  }
  return tags;
}

/** ms of each of `calls` InvalidateTags calls, cycling over `tags`. */
async function time(client, namespace, tags, calls) {
  const samples = [];
  for (let i = 0; i < calls; i++) {
    const t0 = process.hrtime.bigint();
    await client.invalidateTags([tags[i % tags.length]], { namespace });
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return samples;
}

async function measureTier(ctx, label, serverConfig) {
  const { CacheClient } = await importDist("client/index.js");
  const server = await startChild("tiercache-server", serverConfig, { profile: ctx.profile, label: `${NAME}-${label}` });
  const client = new CacheClient({ address: server.info.address, timeoutMs: 120_000 });
  const small = ctx.quick ? 100 : 1000;
  const large = ctx.quick ? 10_000 : 1_000_000;
  const calls = ctx.quick ? 20 : 200;
  try {
    const t0 = Date.now();
    const smallTags = await fill(client, "bench", "small", small);
    const largeTags = await fill(client, "bench", "large", large);
    ctx.log(`  ${label}: wrote ${small} + ${large} tagged values in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if ((await client.get("large:7", { namespace: "bench" })) !== 7) throw new Error("a tagged value was not readable before its invalidation");
    const first = { small: [], large: [] };
    const p50 = { small: [], large: [] };
    for (let round = 0; round < ctx.rounds; round++) {
      const s = await time(client, "bench", smallTags, calls);
      const l = await time(client, "bench", largeTags, calls);
      if (round === 0) {
        first.small.push(s[0]);
        first.large.push(l[0]);
      }
      p50.small.push(median(s));
      p50.large.push(median(l));
      ctx.log(`  ${label} round ${round}: InvalidateTags p50 ${fmt(median(s))} ms (${small} values), ${fmt(median(l))} ms (${large} values)`);
    }
    if ((await client.get("large:7", { namespace: "bench" })) !== undefined) throw new Error("an invalidated value is still readable");
    const n = large >= 1e6 ? `${large / 1e6}M` : `${large / 1000}k`;
    const ms = (list) => `${fmt(median(list))} ms`;
    return [
      measured({
        scenario: NAME,
        subject: `InvalidateTags p50, ${n} tagged values (${label})`,
        baseline: `same, ${small} tagged values`,
        ratios: p50.large.map((v, i) => v / p50.small[i]),
        goal: { op: "<=", value: 1.5 },
        context: `p50 ${ms(p50.large)} vs ${ms(p50.small)}; first call (hides them all) ${fmt(first.large[0])} ms vs ${fmt(first.small[0])} ms`,
      }),
      measured({
        scenario: NAME,
        subject: `InvalidateTags p50, ${n} tagged values (${label})`,
        baseline: `${BUDGET_MS} ms budget`,
        ratios: p50.large.map((v) => v / BUDGET_MS),
        goal: { op: "<=", value: 1 },
        context: `p50 ${ms(p50.large)} over ${calls} calls × ${ctx.rounds} rounds`,
      }),
    ];
  } finally {
    client.close();
    await server.stop();
  }
}

export default {
  name: NAME,
  description: "InvalidateTags latency with 1k vs 1M tagged values (LMDB, Redis): the call must not grow with the number of values (goal p50 ≤ 5 ms)",
  async run(ctx) {
    const rows = await measureTier(ctx, "LMDB", { storage: "lmdb" });
    const redis = await ctx.redis();
    if (!redis) rows.push(unavailable({ scenario: NAME, subject: "InvalidateTags p50 (Redis)", baseline: "1k tagged values", reason: "no redis-server on PATH" }));
    else rows.push(...(await measureTier(ctx, "Redis", { storage: "memory", redisUrl: redis.url })));
    return { rows };
  },
};
