import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
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
