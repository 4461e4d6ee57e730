import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { RedisTier } from "../../server/tiers/redis-tier.js";
import { describeDurableTier } from "../conformance/durable-tier-suite.js";
import { startTestRedisCluster, type TestRedisCluster } from "../helpers/redis-cluster.js";

const codec = new ValueCodec();
const envelope = (value: string) => codec.encode(new TextEncoder().encode(value), "text/plain", 0);

let cluster: TestRedisCluster;
beforeAll(async () => {
  cluster = await startTestRedisCluster(3);
});
afterAll(async () => {
  await cluster?.stop();
});

describeDurableTier("redis (cluster, 3 masters)", async (clock) => {
  const tier = await RedisTier.connect({ clusterNodes: cluster.nodes.slice(0, 1), clock: clock.now });
  return { tier, dispose: () => tier.close() };
});

describe("RedisTier (cluster) specifics", () => {
  let tier: RedisTier;
  let raw: Cluster;
  beforeAll(async () => {
    tier = await RedisTier.connect({ clusterNodes: cluster.nodes, keyPrefix: "cl" });
    raw = new Cluster(cluster.nodes.map((n) => ({ host: n.split(":")[0]!, port: Number(n.split(":")[1]) })), { lazyConnect: true });
    await raw.connect();
  });
  afterAll(async () => {
    await tier?.close();
    raw?.disconnect();
  });

  /** The master holding a namespace's slot ("host:port"). */
  async function ownerOf(namespace: string): Promise<string> {
    const slot = await raw.cluster("KEYSLOT", `cl:{${namespace}}:x`);
    const range = (await raw.cluster("SLOTS")).find(([from, to]) => slot >= from && slot <= to)!;
    const [host, port] = range[2]!;
    return `${host}:${port}`;
  }

  it("keeps each namespace in one slot, spreads namespaces over masters, and clears each across masters", async () => {
    const namespaces = Array.from({ length: 12 }, (_, i) => `tenant-${i}`);
    const owners = new Set(await Promise.all(namespaces.map(ownerOf)));
    expect(owners.size).toBe(3); // twelve namespaces land on all three masters

    for (const ns of namespaces) {
      await tier.setMany(
        ns,
        Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, envelope: envelope(`${ns}/${i}`), expiresAt: 0 })),
      );
    }
    const keep = namespaces[0]!;
    for (const ns of namespaces.slice(1)) await tier.clear(ns);

    for (const ns of namespaces.slice(1)) expect((await tier.getMany(ns, ["k0", "k150", "k299"])).every((v) => v === undefined)).toBe(true);
    expect((await tier.getMany(keep, ["k0", "k299"])).every((v) => v !== undefined)).toBe(true);
    let left = 0;
    for (const node of raw.nodes("master")) left += (await node.keys("cl:*")).length;
    expect(left).toBe(300);
    await tier.clear(keep);
  });
});
