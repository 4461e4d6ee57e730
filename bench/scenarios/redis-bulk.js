/**
 * Bulk transfer of 100k keys through the service over Redis (pending the
 * Redis tier): StreamSet / StreamGet (1,000 keys per message, memory tier
 * shrunk to 1 entry so reads come from Redis) against ioredis pipelined SET
 * (1,000 per pipeline) and MGET (1,000 keys each), all issued at once.
 */
import { startChild } from "../lib/child.js";
import { measured, unavailable } from "../lib/report.js";
import { redisTierAvailable } from "../lib/redis-subject.js";
import { fmt, median } from "../lib/stats.js";

const NAME = "redis-bulk";
const TTL_MS = 3_600_000;

export default {
  name: NAME,
  description: "StreamGet/StreamSet of 100k keys over the Redis tier vs ioredis MGET / pipelined SET (subject measured once RedisTier exists)",
  async run(ctx) {
    const total = ctx.quick ? 1000 : 100_000;
    const n = total >= 1000 ? `${total / 1000}k` : String(total);
    const rows = {
      set: { subject: `StreamSet ${n} keys (Redis tier)`, baseline: "ioredis pipelined SET" },
      get: { subject: `StreamGet ${n} keys (Redis tier)`, baseline: "ioredis MGET ×1000" },
      // Values without expiry go to Redis as MSETs of 1,000 keys; with a TTL each is a SET … PX, as in this row.
      setTtl: { subject: `StreamSet ${n} keys with a 1 h TTL (Redis tier)`, baseline: "ioredis pipelined SET … PX" },
      // The same command on both sides: what tiercache adds on top of the MSETs it sends.
      setMset: { subject: `StreamSet ${n} keys (Redis tier)`, baseline: "ioredis MSET ×100 (1,000 keys each)" },
    };
    const redis = await ctx.redis();
    if (!redis) return { rows: Object.values(rows).map((r) => unavailable({ scenario: NAME, ...r, reason: "no redis-server on PATH" })) };
    const hasTier = await redisTierAvailable();
    const raw = await startChild("redis-load", { url: redis.url });
    let server;
    let load;
    try {
      if (hasTier) {
        server = await startChild("tiercache-server", { storage: "memory", redisUrl: redis.url, memoryMaxEntries: 1 }, { profile: ctx.profile, label: `${NAME}-tiercache` });
        load = await startChild("grpc-load", { tcAddress: server.info.address, keys: 10 });
      }
      const rounds = ctx.quick ? 1 : 3;
      const res = { rawSet: [], rawGet: [], tcSet: [], tcGet: [], rawSetTtl: [], tcSetTtl: [], rawMset: [] };
      for (let round = 0; round < (ctx.quick ? 1 : rounds + 1); round++) {
        const s = await raw.call("bulk", { op: "set", total, chunk: 1000 });
        const g = await raw.call("bulk", { op: "mget", total, chunk: 1000 });
        const t = load ? await load.call("stream", { total, batchSize: 1000 }) : undefined;
        const sTtl = await raw.call("bulk", { op: "set", total, chunk: 1000, ttlMs: TTL_MS });
        const m = await raw.call("bulk", { op: "mset", total, chunk: 1000 });
        const tTtl = load ? await load.call("stream", { total, batchSize: 1000, ttlMs: TTL_MS, read: false }) : undefined;
        if (round === 0 && !ctx.quick) continue; // warm-up
        res.rawSet.push(s.keysPerSec);
        res.rawGet.push(g.keysPerSec);
        res.rawSetTtl.push(sTtl.keysPerSec);
        res.rawMset.push(m.keysPerSec);
        if (t) {
          res.tcSet.push(t.setKeysPerSec);
          res.tcGet.push(t.getKeysPerSec);
          res.tcSetTtl.push(tTtl.setKeysPerSec);
        }
        ctx.log(
          `  round ${round}: SET ${fmt(s.keysPerSec)}/s, MGET ${fmt(g.keysPerSec)}/s, MSET ${fmt(m.keysPerSec)}/s, SET PX ${fmt(sTtl.keysPerSec)}/s` +
            (t ? `, StreamSet ${fmt(t.setKeysPerSec)}/s, StreamGet ${fmt(t.getKeysPerSec)}/s, StreamSet with TTL ${fmt(tTtl.setKeysPerSec)}/s` : ""),
        );
      }
      const k = (list) => `${fmt(median(list))} keys/s`;
      /** The row of tiercache's keys/s `tc` against the baseline's `base`, one ratio per round. */
      const row = (spec, tc, base, goal) =>
        hasTier
          ? measured({ scenario: NAME, ...spec, ratios: tc.map((v, i) => v / base[i]), goal, context: `${k(tc)} vs ${k(base)}` })
          : unavailable({ scenario: NAME, ...spec, context: `baseline ${k(base)}` });
      return {
        rows: [
          row(rows.set, res.tcSet, res.rawSet, { op: ">=", value: 0.7 }),
          row(rows.get, res.tcGet, res.rawGet, { op: ">=", value: 0.5 }),
          row(rows.setTtl, res.tcSetTtl, res.rawSetTtl),
          row(rows.setMset, res.tcSet, res.rawMset),
        ],
      };
    } finally {
      await load?.stop();
      await server?.stop();
      await raw.stop();
    }
  },
};
