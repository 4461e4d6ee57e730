import { Cluster } from "ioredis";
import { describe, expect, it } from "vitest";
import { AttemptEnd } from "../../server/tiers/attempt-end.js";
import { dropLateCommands, issueIn } from "../../server/tiers/late-commands.js";
import { leaseKey, redisKey } from "../../server/tiers/redis-keys.js";
import { RedisTier } from "../../server/tiers/redis-tier.js";
import { clusterNodeConnection, startSlotMigration, useTestRedisCluster } from "../helpers/redis-cluster.js";
import { envelopeText, textEnvelope } from "../helpers/text-envelope.js";

/**
 * A fenced lease write that the guard reported failed while its slot was
 * migrating must never be written later over a plain Set acknowledged after
 * the failure. ioredis Cluster answers TRYAGAIN (a multi-key script, one key
 * not yet moved) by sending the same command again every 100 ms, up to 16
 * times, long after the attempt timed out; once the migration ends, that
 * resend used to land and overwrite the acknowledged value for good.
 */
const cluster = useTestRedisCluster();

const text = envelopeText;

/** ioredis Cluster's defaults: maxRedirections × retryDelayOnTryAgain, plus margin. */
const RESEND_WINDOW_MS = 16 * 100 + 900;

describe("Redis Cluster: a fenced lease write during a slot migration", () => {
  it("is not written after its attempt ended, over a plain Set acknowledged since", async () => {
    const options = { clusterNodes: cluster().nodes, keyPrefix: "ll", retries: 0, commandTimeoutMs: 500, breakerVolumeThreshold: 1000 };
    const tier = await RedisTier.connect(options);
    const other = await RedisTier.connect(options);
    const nodes = cluster().nodes.map(clusterNodeConnection);
    try {
      const ns = "fenced";
      const old = Array.from({ length: 20 }, (_, i) => `old${i}`);
      await tier.setMany(ns, old.map((key) => ({ key, envelope: textEnvelope("old"), expiresAt: 0 })));
      expect(await tier.leases.acquire(ns, "a", "token-1", 30_000, false)).toEqual({ acquired: true });
      const move = await startSlotMigration(cluster(), nodes, "ll", ns);

      const fenced = await tier.leases.setFenced(ns, { key: "a", envelope: textEnvelope("fenced"), expiresAt: 0 }, "token-1").then(
        (stored) => `ok: ${stored}`,
        (err: unknown) => `failed: ${String(err)}`,
      );
      await tier.set(ns, { key: "a", envelope: textEnvelope("plain"), expiresAt: 0 });
      await move.finish([...old.map((key) => redisKey("ll", ns, key)), leaseKey("ll", ns, "a")]);
      await new Promise((resolve) => setTimeout(resolve, RESEND_WINDOW_MS));

      expect(fenced).toMatch(/^failed/);
      expect(text(await move.target.getBuffer(redisKey("ll", ns, "a")))).toBe("plain");
      expect(text(await other.get(ns, "a"))).toBe("plain");
    } finally {
      for (const n of nodes) n.disconnect();
      await tier.close();
      await other.close();
    }
  }, 60_000);
});

describe("Redis Cluster: commands deferred until the first slot table", () => {
  it("are created inside their attempt, and written as DBSIZE when it ended meanwhile", async () => {
    const client = new Cluster(
      cluster().nodes.map((address) => ({ host: address.split(":")[0]!, port: Number(address.split(":")[1]) })),
      { lazyConnect: true, enableAutoPipelining: true },
    );
    dropLateCommands(client);
    const nodes = cluster().nodes.map(clusterNodeConnection);
    try {
      const attempt = new AttemptEnd();
      const late = issueIn(attempt, () => client.set("dl:{deferred}:a", "late")); // no slots yet: deferred until ready
      attempt.end();
      const live = issueIn(new AttemptEnd(), () => client.set("dl:{deferred}:b", "live"));
      expect(typeof (await late)).toBe("number"); // DBSIZE
      expect(await live).toBe("OK");
      const stored = await Promise.all(nodes.map((n) => n.call("GET", "dl:{deferred}:a").catch(() => null)));
      expect(stored.every((value) => value === null)).toBe(true);
      expect(await client.get("dl:{deferred}:b")).toBe("live");
    } finally {
      for (const n of nodes) n.disconnect();
      client.disconnect();
    }
  }, 30_000);
});

describe("Redis Cluster: a plain multi-key command during a slot migration", () => {
  it("is written as DBSIZE once its attempt ended, on whichever node ioredis resends it to", async () => {
    const client = new Cluster(
      cluster().nodes.map((address) => ({ host: address.split(":")[0]!, port: Number(address.split(":")[1]) })),
      { lazyConnect: true, enableOfflineQueue: false },
    );
    dropLateCommands(client);
    await client.connect();
    const nodes = cluster().nodes.map(clusterNodeConnection);
    try {
      await client.set("mk:{multi}:x", "old");
      const move = await startSlotMigration(cluster(), nodes, "mk", "multi");
      const attempt = new AttemptEnd();
      const late = issueIn(attempt, () => client.mset("mk:{multi}:x", "late", "mk:{multi}:y", "late")); // y is missing on the source: TRYAGAIN
      await new Promise((resolve) => setTimeout(resolve, 250)); // a few resends
      attempt.end();
      await move.finish(["mk:{multi}:x"]);
      expect(typeof (await late)).toBe("number"); // the next resend went out as DBSIZE, which is not resent
      expect(await move.target.get("mk:{multi}:x")).toBe("old");
      expect(await move.target.get("mk:{multi}:y")).toBeNull();
    } finally {
      for (const n of nodes) n.disconnect();
      client.disconnect();
    }
  }, 30_000);
});
