import { Server, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { ValueCodec } from "../core/codec.js";
import type { Clock } from "../core/clock.js";
import { addService } from "../core/grpc-adapter.js";
import { CacheService, file_tiercache_v1_cache } from "../gen/tiercache/v1/cache_pb.js";
import type { ServerConfig } from "./config.js";
import { CacheEngine } from "./engine/cache-engine.js";
import type { DurableTier } from "./engine/durable-tier.js";
import { jsonLogger, type Logger } from "./logger.js";
import { startMetricsServer } from "./metrics.js";
import { reflectionFor } from "./reflection.js";
import { cacheServiceHandlers } from "./rpc/cache-service.js";
import { errorToStatus } from "./rpc/error-status.js";
import { LocalTier } from "./tiers/local-tier.js";

/** A started tiercache server. */
export interface RunningServer {
  /** `host:port` it listens on. */
  readonly address: string;
  readonly port: number;
  /** Port of the Prometheus /metrics endpoint, when it is on. */
  readonly metricsPort: number | undefined;
  readonly engine: CacheEngine;
  /**
   * Stops taking calls (health turns NOT_SERVING), waits up to
   * `config.shutdownGraceMs` for calls in flight, cuts the rest, then closes
   * the tiers. Safe to call more than once.
   */
  shutdown(): Promise<void>;
}

/** Things a test or an embedding program may replace. */
export interface ServerDependencies {
  clock?: Clock;
  logger?: Logger;
  /** A durable tier to use instead of the one `config.storage` names. */
  durable?: DurableTier;
}

const SERVICE_NAME = CacheService.typeName;

function openDurable(config: ServerConfig, clock: Clock | undefined): DurableTier | undefined {
  if (config.storage === "memory") return undefined;
  return LocalTier.open({ dataDir: config.dataDir, ...(clock && { clock }) });
}

/** Starts a tiercache server with `config`; resolves once it listens. */
export async function startServer(config: ServerConfig, deps: ServerDependencies = {}): Promise<RunningServer> {
  const logger = deps.logger ?? jsonLogger(config.logLevel);
  const durable = deps.durable ?? openDurable(config, deps.clock);
  const engine = new CacheEngine({
    durable,
    codec: new ValueCodec({
      maxValueBytes: config.maxValueBytes,
      compressionThreshold: config.compressionThreshold === "off" ? Infinity : config.compressionThreshold,
      compressionLevel: config.compressionLevel,
    }),
    maxKeyBytes: config.maxKeyBytes,
    maxBatch: config.maxBatch,
    maxNamespaces: config.maxNamespaces,
    settingsFor: (namespace) => ({
      defaultTtlMs: config.defaultTtlMs,
      ttlJitter: config.ttlJitter,
      memoryMaxEntries: config.memoryMaxEntries,
      memoryMaxBytes: config.memoryMaxBytes,
      policy: config.memoryPolicy,
      ...config.namespaces.get(namespace),
    }),
    ...(deps.clock && { clock: deps.clock }),
  });

  const server = new Server({
    "grpc.max_receive_message_length": config.maxMessageBytes,
    "grpc.max_send_message_length": config.maxMessageBytes,
  });
  addService(server, CacheService, cacheServiceHandlers(engine), { mapError: errorToStatus(logger) });
  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING" });
  health.addToServer(server);
  reflectionFor([file_tiercache_v1_cache]).addToServer(server);

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${config.host}:${config.port}`, ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
    );
  } catch (err) {
    await engine.close();
    throw err;
  }
  const address = `${config.host}:${port}`;
  let metrics: Awaited<ReturnType<typeof startMetricsServer>> | undefined;
  if (config.metricsPort !== "off") {
    try {
      metrics = await startMetricsServer(engine, config.metricsHost, config.metricsPort, logger);
    } catch (err) {
      server.forceShutdown();
      await engine.close();
      throw new Error(`cannot serve metrics on ${config.metricsHost}:${config.metricsPort}: ${(err as Error).message}`, { cause: err });
    }
  }
  logger.info("tiercache listening", {
    address,
    storage: durable?.name ?? "memory",
    dataDir: durable?.name === "local" ? config.dataDir : undefined,
    metrics: metrics ? `http://${config.metricsHost}:${metrics.port}/metrics` : undefined,
  });

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= (async () => {
      health.setStatus("", "NOT_SERVING");
      health.setStatus(SERVICE_NAME, "NOT_SERVING");
      logger.info("draining", { graceMs: config.shutdownGraceMs });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn("grace period over, cutting calls still in flight");
          server.forceShutdown();
          resolve();
        }, config.shutdownGraceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await new Promise<void>((resolve) => (metrics ? metrics.server.close(() => resolve()) : resolve()));
      await engine.close();
      logger.info("stopped");
    })());

  return { address, port, metricsPort: metrics?.port, engine, shutdown };
}
