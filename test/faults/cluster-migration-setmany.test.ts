import { describe, expect, it } from "vitest";
import { RedisTier } from "../../server/tiers/redis-tier.js";
import { clusterNodeConnection, startSlotMigration, useTestRedisCluster } from "../helpers/redis-cluster.js";

/**
 * A write that failed while its namespace's slot was migrating must not be
 * applied later, behind the caller's back, over a write acknowledged after
 * the failure. (Review of a SetMany sent as one Lua script found that ioredis
 * Cluster resends a lone multi-key command on TRYAGAIN after the guard has
 * given up on it; SetMany stays MULTI/EXEC of SETs, which fails at once.)
 */
const cluster = useTestRedisCluster();

const outcome = (p: Promise<unknown>) =>
  p.then(
    (v) => `ok: ${String(v)}`,
    (err: unknown) => `failed: ${String(err)}`,
  );

describe("Redis Cluster: writes during a slot migration", () => {
  it("a setMany reported failed does not overwrite a value acknowledged after the failure", async () => {
    const tier = await RedisTier.connect({ clusterNodes: cluster().nodes, keyPrefix: "cl", retries: 0, commandTimeoutMs: 500, breakerVolumeThreshold: 1000 });
    const nodes = cluster().nodes.map(clusterNodeConnection);
    try {
      const ns = "late";
      await tier.setMany(ns, Array.from({ length: 20 }, (_, i) => ({ key: `old${i}`, envelope: Buffer.from("old"), expiresAt: 0 })));
      const move = await startSlotMigration(cluster(), nodes, "cl", ns);
      const first = await outcome(
        tier.setMany(ns, [
          { key: "a", envelope: Buffer.from("v1"), expiresAt: 0 },
          { key: "b", envelope: Buffer.from("v1"), expiresAt: 0 },
        ]),
      );
      await tier.set(ns, { key: "a", envelope: Buffer.from("v2"), expiresAt: 0 });
      await move.finish(Array.from({ length: 20 }, (_, i) => `cl:{${ns}}:old${i}`));
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect(first).toMatch(/^failed/);
      expect((await move.target.getBuffer(`cl:{${ns}}:a`))?.toString()).toBe("v2");
      expect(await move.target.getBuffer(`cl:{${ns}}:b`)).toBeNull();
    } finally {
      for (const n of nodes) n.disconnect();
      await tier.close();
    }
  }, 60_000);
});
