import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { startTestRedis, type TestRedis } from "./redis-server.js";

const run = promisify(execFile);

/** A local Redis Cluster of masters only, each a redis-server on its own free loopback port. */
export interface TestRedisCluster {
  /** "127.0.0.1:port" of every master. */
  readonly nodes: string[];
  readonly servers: TestRedis[];
  /** Stops every server and removes their directories. */
  stop(): Promise<void>;
}

/**
 * Starts `masters` redis-servers with cluster mode on (config files in a temp
 * dir), joins them with `redis-cli --cluster create … --cluster-replicas 0`,
 * and waits until every node reports cluster_state:ok.
 */
export async function startTestRedisCluster(masters = 3): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "tiercache-cluster-"));
  const servers: TestRedis[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop(true)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      servers.push(
        await startTestRedis({
          dir,
          args: ["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${i}.conf`, "--cluster-node-timeout", "2000", "--dbfilename", `dump-${i}.rdb`],
        }),
      );
    }
    const nodes = servers.map((s) => `${s.host}:${s.port}`);
    await run("redis-cli", ["--cluster", "create", ...nodes, "--cluster-replicas", "0", "--cluster-yes"], { timeout: 30_000 });
    for (const server of servers) await waitForClusterOk(server);
    return { nodes, servers, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function waitForClusterOk(server: TestRedis): Promise<void> {
  let info = "";
  for (let i = 0; i < 200; i++) {
    info = (await run("redis-cli", ["-h", server.host, "-p", String(server.port), "cluster", "info"])).stdout;
    if (info.includes("cluster_state:ok")) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`cluster node ${server.host}:${server.port} never reached cluster_state:ok: ${info.slice(0, 300)}`);
}

/** Starts a cluster of `masters` before the file's tests and stops it after them; call the result for the cluster. */
export function useTestRedisCluster(masters = 3): () => TestRedisCluster {
  let cluster: TestRedisCluster | undefined;
  beforeAll(async () => {
    cluster = await startTestRedisCluster(masters);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  return () => {
    if (cluster === undefined) throw new Error("the test cluster is not started yet: call it inside a test");
    return cluster;
  };
}

/** A slot move begun by {@link startSlotMigration}. */
export interface SlotMigration {
  /** The node the slot moves to. */
  readonly target: Redis;
  /** MIGRATEs `keys` to the target (the slot stays MIGRATING/IMPORTING). */
  moveKeys(keys: string[]): Promise<void>;
  /** MIGRATEs `keys`, then gives the slot to the target on every node. */
  finish(keys: string[]): Promise<void>;
}

/**
 * Starts moving the slot of `${keyPrefix}:{${namespace}}:…` from the node that
 * holds keys in it to the next node (IMPORTING on the target, then MIGRATING
 * on the source). The slot must hold at least one key. `nodes` are plain
 * connections to `cluster.nodes`, in order.
 */
export async function startSlotMigration(cluster: TestRedisCluster, nodes: Redis[], keyPrefix: string, namespace: string): Promise<SlotMigration> {
  const slot = (await nodes[0]!.cluster("KEYSLOT", `${keyPrefix}:{${namespace}}:x`)) as number;
  const ids = await Promise.all(nodes.map((n) => n.cluster("MYID") as Promise<string>));
  const owners = await Promise.all(nodes.map(async (n) => ((await n.cluster("COUNTKEYSINSLOT", slot)) as number) > 0));
  const from = owners.indexOf(true);
  if (from < 0) throw new Error(`slot ${slot} holds no key: cannot tell its owner`);
  const to = (from + 1) % nodes.length;
  const [host, port] = cluster.nodes[to]!.split(":");
  await nodes[to]!.cluster("SETSLOT", slot, "IMPORTING", ids[from]!);
  await nodes[from]!.cluster("SETSLOT", slot, "MIGRATING", ids[to]!);
  const migrate = async (keys: string[]) => {
    await nodes[from]!.call("MIGRATE", host!, port!, "", "0", "5000", "KEYS", ...keys);
  };
  return {
    target: nodes[to]!,
    moveKeys: migrate,
    finish: async (keys) => {
      await migrate(keys);
      for (const n of nodes) await n.cluster("SETSLOT", slot, "NODE", ids[to]!);
    },
  };
}

/** A plain connection to one "host:port" of a test cluster. */
export function clusterNodeConnection(address: string): Redis {
  return new Redis({ host: address.split(":")[0]!, port: Number(address.split(":")[1]) });
}
