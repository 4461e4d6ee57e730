import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CacheClient, type CacheClientOptions } from "../../client/index.js";
import { defaultConfig, type ServerConfig } from "../../server/config.js";
import { silentLogger } from "../../server/logger.js";
import { startServer, type RunningServer, type ServerDependencies } from "../../server/server.js";

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(prefix = "tiercache-test-"): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A server on a free loopback port with a temporary data directory, and a client of it. */
export interface TestServer {
  server: RunningServer;
  client: CacheClient;
  config: ServerConfig;
  dataDir: string;
  newClient(options?: Partial<CacheClientOptions>): CacheClient;
  /** Stops server and clients (keeps the data directory). */
  stop(): Promise<void>;
  /** Stops and removes the data directory. */
  dispose(): Promise<void>;
}

export async function startTestServer(
  overrides: Partial<ServerConfig> = {},
  deps: ServerDependencies = {},
): Promise<TestServer> {
  const dir = overrides.dataDir ? undefined : tempDir();
  const config = defaultConfig({ port: 0, shutdownGraceMs: 2000, metricsMaxAgeMs: 0, dataDir: dir?.path ?? overrides.dataDir!, ...overrides });
  const server = await startServer(config, { logger: silentLogger, ...deps });
  const clients: CacheClient[] = [];
  const newClient = (options: Partial<CacheClientOptions> = {}) => {
    const client = new CacheClient({ address: server.address, ...options });
    clients.push(client);
    return client;
  };
  const client = newClient();
  const stop = async () => {
    for (const c of clients) c.close();
    await server.shutdown();
  };
  return {
    server,
    client,
    config,
    dataDir: config.dataDir,
    newClient,
    stop,
    dispose: async () => {
      await stop();
      dir?.remove();
    },
  };
}
