/**
 * (3) The memory tier in process: get hit and set-with-eviction for each
 * policy, against a plain Map and lru-cache; 100k entries of 1 KiB (one
 * shared value), uniformly random keys. Per round, one fresh process per
 * policy measures its MemoryTier, Map and lru-cache in interleaved slices,
 * each loop compiled separately (monomorphic). Speed is ops per CPU-second.
 */
import { startChild } from "../lib/child.js";
import { measured } from "../lib/report.js";
import { roundOrder } from "../lib/rounds.js";
import { fmt, median } from "../lib/stats.js";

const NAME = "memory-tier-ops";
const POLICIES = ["lru", "fifo", "lfu", "tinylfu"];
/** Set-with-eviction goals against lru-cache; the adaptive W-TinyLFU also has one for get hit (issue 14). */
const GOALS = { lru: 0.5, fifo: 0.5, lfu: 0.33, tinylfu: 0.5 };
const GET_GOALS = { tinylfu: 0.5 };

export default {
  name: NAME,
  description: "MemoryTier get hit / set-with-eviction per policy vs Map and lru-cache (in process)",
  async run(ctx) {
    const capacity = ctx.quick ? 1000 : 100_000;
    const timing = ctx.quick ? { warmupMs: 5, sliceMs: 5, slices: 2 } : { warmupMs: 100, sliceMs: 40, slices: 8 };
    // results[policy][id] = ops/s per round, id = "get:tier" | "get:map" | "get:lru-cache" | "set-evict:…"
    const results = Object.fromEntries(POLICIES.map((p) => [p, {}]));
    for (let round = 0; round < ctx.rounds; round++) {
      for (const policy of roundOrder(round, POLICIES)) {
        const child = await startChild("micro", {}, { label: `${NAME}-${policy}`, execArgv: ["--expose-gc"] });
        try {
          const r = await child.call("memoryInterleaved", { policy, capacity, seed: 42 + round, ...timing });
          for (const [id, ops] of Object.entries(r)) (results[policy][id] ??= []).push(ops);
        } finally {
          await child.stop();
        }
      }
      ctx.log(`  round ${round + 1}: ${POLICIES.map((p) => `${p} get ${fmt(results[p]["get:tier"].at(-1))}/s set ${fmt(results[p]["set-evict:tier"].at(-1))}/s`).join(", ")}`);
    }
    const ratios = (policy, a, b) => results[policy][a].map((v, i) => v / results[policy][b][i]);
    const ops = (policy, id) => `${fmt(median(results[policy][id]))}/s`;
    const rows = [];
    for (const policy of POLICIES) {
      rows.push(
        measured({ scenario: NAME, subject: `MemoryTier(${policy}).get hit`, baseline: "Map.get", ratios: ratios(policy, "get:tier", "get:map"), context: `${ops(policy, "get:tier")} vs ${ops(policy, "get:map")}` }),
        measured({ scenario: NAME, subject: `MemoryTier(${policy}).get hit`, baseline: "lru-cache get", ratios: ratios(policy, "get:tier", "get:lru-cache"), goal: GET_GOALS[policy] && { op: ">=", value: GET_GOALS[policy] }, context: `${ops(policy, "get:tier")} vs ${ops(policy, "get:lru-cache")}` }),
      );
    }
    for (const policy of POLICIES) {
      rows.push(
        measured({
          scenario: NAME,
          subject: `MemoryTier(${policy}).set with eviction`,
          baseline: "lru-cache set with eviction",
          ratios: ratios(policy, "set-evict:tier", "set-evict:lru-cache"),
          goal: { op: ">=", value: GOALS[policy] },
          context: `${ops(policy, "set-evict:tier")} vs ${ops(policy, "set-evict:lru-cache")} (Map set+delete ${ops(policy, "set-evict:map")})`,
        }),
      );
    }
    return { rows };
  },
};
