import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { closedPort } from "../helpers/closed-port.js";
import { eventually } from "../helpers/eventually.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { storesOnceReachable } from "../helpers/stores-once-reachable.js";
import { listeningAddress, runTiercache, type TiercacheProcess } from "../helpers/tiercache-process.js";

const run = promisify(execFile);

/**
 * As with unreachable Sentinels (serve-sentinels-unreachable.test.ts), a
 * server whose every Redis Cluster seed node is unreachable at start must
 * listen (Redis unavailable), serve once the cluster answers on a seed's
 * address, and stop on SIGTERM.
 */
describe("tiercache serve with every Redis Cluster seed unreachable at start", () => {
  const dir = mkdtempSync(join(tmpdir(), "tiercache-cluster-down-"));
  let server: TiercacheProcess | undefined;
  let node: TestRedis | undefined;
  afterAll(async () => {
    server?.child.kill("SIGKILL");
    await node?.stop(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts listening, serves once the cluster answers, and exits 0 on SIGTERM", async () => {
    const seedPort = await closedPort();
    server = runTiercache(["serve", "--port", "0", "--metrics-port", "off", "--data-dir", join(dir, "data"), "--redis-cluster-nodes", `127.0.0.1:${seedPort}`]);
    const address = await listeningAddress(server);
    expect(server.stderr()).toContain("redis not reachable at start");

    // A one-node cluster on the seed's port, holding every slot.
    node = await startTestRedis({ dir, port: seedPort, args: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000", "--cluster-announce-ip", "127.0.0.1"] });
    await run("redis-cli", ["-h", node.host, "-p", String(node.port), "cluster", "addslotsrange", "0", "16383"]);
    await eventually(async () => (await run("redis-cli", ["-h", node!.host, "-p", String(node!.port), "cluster", "info"])).stdout.includes("cluster_state:ok"), 10_000);

    expect(await storesOnceReachable(address, "late", "k", 20_000)).toBe("v");
    const stored = await run("redis-cli", ["-h", node.host, "-p", String(node.port), "exists", "tiercache:{late}:k"]);
    expect(stored.stdout.trim()).toBe("1");
    server.child.kill("SIGTERM");
    expect(await server.exit).toBe(0);
  }, 60_000);
});
