import { describe, expect, it } from "vitest";
import { redisKey } from "../../server/tiers/redis-keys.js";
import { RedisTier } from "../../server/tiers/redis-tier.js";
import { clusterNodeConnection, startSlotMigration, useTestRedisCluster } from "../helpers/redis-cluster.js";
import { envelopeText, textEnvelope } from "../helpers/text-envelope.js";

/*
 * Slot MIGRATING, key "a" already moved to the target, key "b" still on the source. A cancelled Set of "a"
 * shares an auto-pipeline with a live Get of "b". When the late Set was written as EXISTS a, the source answered
 * ASK for it and b's value for the Get; every error being that ASK and the only success read-only, ioredis re-sent
 * the whole pipeline to the importing node with ASKING, where "b" is not: the Get answered a miss. Written as
 * DBSIZE, the late command is never redirected and the Get keeps its value.
 * (ioredis does the same with two live commands, a write answered ASK and a read that succeeded: not covered here.)
 */
const cluster = useTestRedisCluster();

const text = (stored: Uint8Array | null | undefined) => String(envelopeText(stored));

async function run(cancel: boolean, ns: string): Promise<{ live: string; onSource: string }> {
  const options = { clusterNodes: cluster().nodes, keyPrefix: "r6a", retries: 2, commandTimeoutMs: 1_000, breakerVolumeThreshold: 1000 };
  const tier = await RedisTier.connect(options);
  const nodes = cluster().nodes.map(clusterNodeConnection);
  try {
    await tier.set(ns, { key: "a", envelope: textEnvelope("va"), expiresAt: 0 });
    await tier.set(ns, { key: "b", envelope: textEnvelope("vb"), expiresAt: 0 });
    await tier.set("busy", { key: "x", envelope: textEnvelope("x"), expiresAt: 0 });
    expect(text(await tier.get(ns, "b"))).toBe("vb");
    const move = await startSlotMigration(cluster(), nodes, "r6a", ns);
    await move.moveKeys([redisKey("r6a", ns, "a")]); // "a" on the target, "b" still on the source: source answers ASK for "a" only

    const ac = new AbortController();
    const busy = tier.get("busy", "x"); // alone: direct, so the next ones are auto-pipelined
    const doomed = tier.set(ns, { key: "a", envelope: textEnvelope("doomed"), expiresAt: 0 }, { signal: ac.signal }).catch(() => undefined);
    const live = tier.get(ns, "b").then(
      (v) => `value ${text(v)}`,
      (err: unknown) => `failed: ${String(err)}`,
    );
    await Promise.resolve();
    if (cancel) ac.abort(new Error("client went away")); // before the auto-pipeline is written
    const [result] = await Promise.all([live, busy, doomed]);
    // where "b" really is
    let onSource = "nowhere";
    for (const n of nodes) {
      const raw = await n.getBuffer(redisKey("r6a", ns, "b")).catch(() => null);
      if (raw) onSource = text(raw);
    }
    return { live: result, onSource };
  } finally {
    for (const n of nodes) n.disconnect();
    await tier.close();
  }
}

describe("Redis Cluster: a late command batched with a live read during a slot migration", () => {
  it("a live Get of b batched with a cancelled Set of a (already migrated) answers b's value", async () => {
    const r = await run(true, "ra2");
    expect(r.onSource).toBe("vb");
    expect(r.live).toBe("value vb");
  }, 30_000);
});
