/**
 * Subject server: the real tiercache server (dist/server startServer), in
 * its own process, with storage "memory" or "lmdb" (or a Redis tier when
 * `redisUrl` is given and the Redis tier exists). Reports its CPU time on
 * request so the harness can compute CPU per call.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serveChild } from "../lib/child.js";
import { importDist } from "../lib/paths.js";

await serveChild(async (config) => {
  const { startServer, defaultConfig } = await importDist("server/index.js");
  const dataDir = mkdtempSync(join(tmpdir(), "tiercache-bench-data-"));
  const deps = {};
  if (config.redisUrl) {
    const { RedisTier } = await importDist("server/tiers/redis-tier.js");
    deps.durable = await RedisTier.connect({ url: config.redisUrl });
  }
  const server = await startServer(
    defaultConfig({
      host: "127.0.0.1",
      port: 0,
      storage: config.storage ?? "memory",
      dataDir,
      logLevel: "error",
      ...(config.memoryMaxEntries && { memoryMaxEntries: config.memoryMaxEntries }),
      ...(config.memoryPolicy && { memoryPolicy: config.memoryPolicy }),
    }),
    deps,
  );
  return {
    info: { address: server.address, port: server.port },
    cpu: () => process.cpuUsage(),
    async stop() {
      await server.shutdown();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
});
