import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisTier } from "../../server/tiers/redis-tier.js";
import { startTestRedisCluster, type TestRedisCluster } from "../helpers/redis-cluster.js";

/**
 * A SetMany that failed while its namespace's slot was migrating must not be
 * applied later, behind the caller's back, over a write acknowledged after
 * the failure (found by review: ioredis Cluster resent a lone script call on
 * TRYAGAIN after the guard had given up on it).
 */
let cluster: TestRedisCluster;
beforeAll(async () => {
  cluster = await startTestRedisCluster(3);
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

const node = (address: string) => new Redis({ host: address.split(":")[0]!, port: Number(address.split(":")[1]) });

describe("Redis Cluster: setMany during a slot migration", () => {
  it("a batch reported failed does not overwrite a value acknowledged after the failure", async () => {
    const tier = await RedisTier.connect({ clusterNodes: cluster.nodes, keyPrefix: "cl", retries: 0, commandTimeoutMs: 500, breakerVolumeThreshold: 1000 });
    const nodes = cluster.nodes.map(node);
    try {
      const ns = "late";
      await tier.setMany(ns, Array.from({ length: 20 }, (_, i) => ({ key: `old${i}`, envelope: Buffer.from("old"), expiresAt: 0 })));
      const slot = (await nodes[0]!.cluster("KEYSLOT", `cl:{${ns}}:x`)) as number;
      const ids = await Promise.all(nodes.map((n) => n.cluster("MYID") as Promise<string>));
      const owners = await Promise.all(nodes.map(async (n) => ((await n.cluster("COUNTKEYSINSLOT", slot)) as number) > 0));
      const from = owners.indexOf(true);
      const to = (from + 1) % 3;
      const [host, port] = cluster.nodes[to]!.split(":");
      await nodes[to]!.cluster("SETSLOT", slot, "IMPORTING", ids[from]!);
      await nodes[from]!.cluster("SETSLOT", slot, "MIGRATING", ids[to]!);
      const first = await tier
        .setMany(ns, [
          { key: "a", envelope: Buffer.from("v1"), expiresAt: 0 },
          { key: "b", envelope: Buffer.from("v1"), expiresAt: 0 },
        ])
        .then(
          () => "ok",
          (err: unknown) => `failed: ${String(err)}`,
        );
      await tier.set(ns, { key: "a", envelope: Buffer.from("v2"), expiresAt: 0 });
      const keys = Array.from({ length: 20 }, (_, i) => `cl:{${ns}}:old${i}`);
      await nodes[from]!.call("MIGRATE", host!, port!, "", "0", "5000", "KEYS", ...keys);
      for (const n of nodes) await n.cluster("SETSLOT", slot, "NODE", ids[to]!);
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const a = (await nodes[to]!.getBuffer(`cl:{${ns}}:a`))?.toString();
      const b = await nodes[to]!.getBuffer(`cl:{${ns}}:b`);
      expect(first).toMatch(/^failed/);
      expect(a).toBe("v2");
      expect(b).toBeNull();
    } finally {
      for (const n of nodes) n.disconnect();
      await tier.close();
    }
  }, 60_000);
});
