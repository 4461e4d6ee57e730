import { setMaxListeners } from "node:events";
import type { DescMethod } from "@bufbuild/protobuf";
import { Server } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { ValueCodec } from "../core/codec.js";
import type { Clock } from "../core/clock.js";
import { addService } from "../core/grpc-adapter.js";
import { CacheService, file_tiercache_v1_cache } from "../gen/tiercache/v1/cache_pb.js";
import { checkConsistency, type ServerConfig } from "./config.js";
import { CacheEngine } from "./engine/cache-engine.js";
import type { DurableTier } from "./engine/durable-tier.js";
import { connectionOptions, connectionLimits } from "./connection-options.js";
import { listenGuarded, type GuardedListener } from "./guarded-listener.js";
import { jsonLogger, type Logger } from "./logger.js";
import { raiseMallocThresholds } from "./malloc-thresholds.js";
import { ServerMetrics, startMetricsServer } from "./metrics.js";
import { readiness as judgeReadiness, remoteReadiness, type Readiness, type ReadinessInputs } from "./observability/readiness.js";
import { StatusReporter } from "./observability/status-report.js";
import { checkPortsFree } from "./port-check.js";
import { avoidPretenuring } from "./pretenuring.js";
import { reflectionFor } from "./reflection.js";
import { CallSlots } from "./rpc/call-slots.js";
import { cacheServiceHandlers, DEFAULT_SESSION_IN_FLIGHT, MAX_SESSION_CALLS } from "./rpc/cache-service.js";
import { errorToStatus } from "./rpc/error-status.js";
import { traceInterceptor } from "./rpc/trace-interceptor.js";
import { watchRequestGuard } from "./rpc/watch-request-guard.js";
import { WatcherSlots } from "./rpc/watcher-slots.js";
import { AccessControl } from "./security/access-control.js";
import { deadlineCeiling } from "./security/limits.js";
import { serverCredentials, transportName } from "./security/transport.js";
import { LmdbTier } from "./tiers/lmdb-tier.js";
import { ObservedDurableTier } from "./tiers/observed-durable-tier.js";
import type { RedisClient } from "./tiers/redis-connection.js";
import type { InvalidationChannelStats, RedisInvalidationChannel } from "./tiers/redis-invalidation.js";
import { RedisTier, type RedisTierOptions } from "./tiers/redis-tier.js";
import { traceDurableCalls } from "./tiers/durable-call-tracing.js";
import { WriteFence } from "./tiers/write-fence.js";

/** A started tiercache server. */
export interface RunningServer {
  /** `host:port` it listens on. */
  readonly address: string;
  readonly port: number;
  /** Port of the HTTP endpoint (/metrics, /healthz, /readyz, the status page), when it is on. */
  readonly metricsPort: number | undefined;
  readonly engine: CacheEngine;
  /** The Redis circuit breaker: "closed", "open" or "half-open"; "" without Redis. */
  durableBreaker(): string;
  /** Client connections: open now, accepted and refused (`--max-connections`) since start. */
  connections(): { open: number; accepted: number; refused: number };
  /** Whether the server should get traffic now (what /readyz answers). */
  readiness(): Readiness;
  /** Counters and state of the invalidation channel between instances; undefined without Redis. */
  invalidationStats(): InvalidationChannelStats | undefined;
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
  /**
   * With Redis: the client the invalidation channel subscribes with, instead
   * of a duplicate of the data connection (not yet connected). Tests route it
   * through a faulty network this way.
   */
  invalidationSubscriber?: RedisClient;
}

const SERVICE_NAME = CacheService.typeName;
/** Health entry that follows the durable tier: NOT_SERVING whenever /readyz would say Redis is not usable. */
export const DURABLE_HEALTH_NAME = "tiercache.durable";
/** How long closing the tiers may take once the grace is over; a Redis that does not answer by then is disconnected. */
const CLOSE_BUDGET_MS = 1_000;
/** How often the durable health entry is judged again (connection changes have no hook of their own). */
const DURABLE_HEALTH_REFRESH_MS = 200;

function redisOptions(config: ServerConfig, logger: Logger, clock: Clock | undefined, onBreakerStateChange: (state: string) => void): RedisTierOptions {
  const common = {
    keyPrefix: config.redisKeyPrefix,
    commandTimeoutMs: config.redisTimeoutMs,
    retries: config.redisRetries,
    breakerResetTimeoutMs: config.redisBreakerResetMs,
    logger,
    onBreakerStateChange,
    ...(config.redisPassword !== undefined && { password: config.redisPassword }),
    ...(clock && { clock }),
  };
  if (config.redisUrl) return { ...common, url: config.redisUrl };
  if (config.redisClusterNodes) return { ...common, clusterNodes: config.redisClusterNodes };
  return { ...common, sentinels: config.redisSentinels ?? [], sentinelName: config.redisSentinelName };
}

async function openDurable(
  config: ServerConfig,
  logger: Logger,
  clock: Clock | undefined,
  onBreakerStateChange: (state: string) => void,
): Promise<DurableTier | undefined> {
  if (config.storage === "memory") return undefined;
  if (config.storage === "redis") return RedisTier.connect(redisOptions(config, logger, clock, onBreakerStateChange));
  return LmdbTier.open({ dataDir: config.dataDir, ...(clock && { clock }) });
}

/** Fields a request may hold per batch item: an entry's own (5, and up to 16 tags) and its place in the batch, with room to spare. */
export const REQUEST_FIELDS_PER_ITEM = 32;
/** Fields a Watch request may hold per namespace: a cursor's own (3) and its place in the request, with room to spare. */
export const REQUEST_FIELDS_PER_CURSOR = 8;
/** Fields a request may hold besides its batch items or cursors. */
export const REQUEST_FIELDS_SLACK = 1024;

/**
 * Most fields, nested ones included, that one request message may hold
 * (see `ServerAdapterOptions.maxRequestFields`): enough for a batch of
 * `maxBatch` full entries and for a Watch of `maxWatchNamespaces` cursors,
 * so that a legal request is not refused, while a message of many tiny
 * fields is refused before the decoder spends seconds and gigabytes on it.
 */
export function maxRequestFields(maxBatch: number, maxWatchNamespaces: number): number {
  return Math.max(maxBatch * REQUEST_FIELDS_PER_ITEM, maxWatchNamespaces * REQUEST_FIELDS_PER_CURSOR) + REQUEST_FIELDS_SLACK;
}

/** Starts a tiercache server with `config`; resolves once it listens. */
export async function startServer(config: ServerConfig, deps: ServerDependencies = {}): Promise<RunningServer> {
  // Refuse options that cannot work together, an exposed or half-configured server, before anything is opened or bound.
  checkConsistency(config);
  raiseMallocThresholds();
  avoidPretenuring();
  const logger = deps.logger ?? jsonLogger(config.logLevel);
  const health = new HealthImplementation({ "": "SERVING", [SERVICE_NAME]: "SERVING", [DURABLE_HEALTH_NAME]: "SERVING" });
  // The durable entry follows the same judgement as /readyz (see remoteReadiness), refreshed on every breaker change and every DURABLE_HEALTH_REFRESH_MS.
  let remote: (() => NonNullable<ReadinessInputs["remote"]>) | undefined;
  let durableHealth = "SERVING";
  const refreshDurableHealth = () => {
    const now = remote === undefined || remoteReadiness(remote()).ready ? "SERVING" : "NOT_SERVING";
    if (now !== durableHealth) health.setStatus(DURABLE_HEALTH_NAME, (durableHealth = now));
  };
  const onBreakerStateChange = () => refreshDurableHealth();
  // A port in use (or given twice) fails here, before the durable tier is opened (or its data directory created).
  await checkPortsFree([
    { host: config.host, port: config.port },
    ...(config.metricsPort === "off" ? [] : [{ host: config.metricsHost, port: config.metricsPort, what: "metrics" }]),
  ]);
  const durable = deps.durable ?? (await openDurable(config, logger, deps.clock, onBreakerStateChange));
  let invalidations: RedisInvalidationChannel | undefined;
  // Over Redis, a change this instance cannot announce to the others is refused (see write-fence.ts).
  const fenced = durable instanceof RedisTier ? new WriteFence(durable, () => invalidations?.canAnnounce ?? false) : durable;
  // Metrics cost nothing per call when the metrics port is off: no interceptor, no timing of durable calls.
  const metrics = config.metricsPort === "off" ? undefined : new ServerMetrics(durable?.name);
  const observed = fenced && new ObservedDurableTier(fenced, [...(metrics ? [metrics.timeDurableCall] : []), traceDurableCalls(fenced.name)]);
  const engine = new CacheEngine({
    degradedWrites: config.degradedWrites,
    onChange: (change) => invalidations?.publish(change),
    durable: observed,
    codec: new ValueCodec({
      maxValueBytes: config.maxValueBytes,
      compressionThreshold: config.compressionThreshold === "off" ? Infinity : config.compressionThreshold,
      compressionLevel: config.compressionLevel,
    }),
    maxKeyBytes: config.maxKeyBytes,
    maxBatch: config.maxBatch,
    maxNamespaces: config.maxNamespaces,
    maxMemoryBytes: config.maxMemoryBytes,
    maxLeases: config.maxLeases,
    watchHistoryBytes: config.watchHistoryBytes,
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
  if (durable instanceof RedisTier) {
    invalidations = durable.invalidations(
      { apply: (change) => engine.applyRemoteChange(change), resync: () => engine.forgetRemoteState() },
      deps.invalidationSubscriber && { subscriber: deps.invalidationSubscriber },
    );
    await invalidations.start();
  }
  const durableBreaker = () => (durable instanceof RedisTier ? durable.breakerState : "");
  const durableFootprint = () => engine.durableFootprint();
  let draining = false;
  if (durable instanceof RedisTier) {
    remote = () => ({ name: durable.name, breaker: durable.breakerState, reachable: durable.reachable, canAnnounce: invalidations?.canAnnounce ?? false });
  }
  const readiness = () => judgeReadiness({ draining, ...(remote && { remote: remote() }) });
  refreshDurableHealth();
  const healthRefresh = remote ? setInterval(refreshDurableHealth, DURABLE_HEALTH_REFRESH_MS).unref() : undefined;

  const server = new Server({
    "grpc.max_receive_message_length": config.maxMessageBytes,
    "grpc.max_send_message_length": config.maxMessageBytes,
    "grpc.max_concurrent_streams": config.maxConcurrentStreams,
    ...connectionOptions(config),
    // The metrics interceptor comes first so that it sees the statuses the others send.
    interceptors: [...(metrics ? [metrics.rpc.interceptor()] : []), traceInterceptor(), watchRequestGuard(config.maxWatchNamespaces)],
  });
  const access = config.tokens && new AccessControl(config.tokens, { logger });
  const closing = new AbortController();
  // Every open Watch and LeaseSession stream listens to it: their number is bounded by the connection limits, not 10.
  setMaxListeners(0, closing.signal);
  const watchOptions = { closing: closing.signal, maxNamespaces: config.maxWatchNamespaces, watchers: new WatcherSlots(config.maxWatchers) };
  const mapError = errorToStatus(logger);
  const session = {
    maxInFlight: DEFAULT_SESSION_IN_FLIGHT,
    maxCallMs: config.maxDeadlineMs,
    maxMessageBytes: config.maxMessageBytes,
    // A call sent on a stream up to half the grace after its connection was asked to go still has the other half to end.
    ...(config.maxConnectionAgeMs !== "off" && config.maxConnectionAgeGraceMs !== "off" && { maxStreamAgeMs: Math.max(1, Math.floor(config.maxConnectionAgeGraceMs / 2)) }),
    mapError,
    closing: closing.signal,
    slots: new CallSlots(MAX_SESSION_CALLS),
    ...(metrics && { onCallEnd: (method: DescMethod, code: number, seconds: number) => metrics.rpc.recordCarried(method, code, seconds) }),
    ...(access && { authorize: access.authorize }),
  };
  addService(server, CacheService, cacheServiceHandlers(engine, watchOptions, durableBreaker, config.maxMessageBytes, access ? access.tenantOf : undefined, session), {
    mapError,
    maxDeadlineMs: deadlineCeiling(config.maxDeadlineMs),
    maxRequestFields: maxRequestFields(config.maxBatch, config.maxWatchNamespaces),
    ...(access && { authorize: access.authorize }),
  });
  health.addToServer(server);
  reflectionFor([file_tiercache_v1_cache]).addToServer(server);

  // Our own listener, not bindAsync: grpc-js cannot bound the number of connections.
  let listener: GuardedListener;
  try {
    listener = await listenGuarded(server.createConnectionInjector(serverCredentials(config)), config.host, config.port, connectionLimits(config), logger);
  } catch (err) {
    clearInterval(healthRefresh);
    server.forceShutdown();
    await invalidations?.close();
    await engine.close();
    throw err;
  }
  const port = listener.port;
  const address = `${config.host}:${port}`;
  let http: Awaited<ReturnType<typeof startMetricsServer>> | undefined;
  if (metrics && config.metricsPort !== "off") {
    metrics.addEngine({ engine, breaker: durableBreaker, durableFootprint, maxNamespaces: config.metricsMaxNamespaces });
    const status = new StatusReporter({ engine, rpc: metrics.rpc, readiness, breaker: durableBreaker, durableFootprint });
    try {
      http = await startMetricsServer({ metrics, status, readiness, maxAgeMs: config.metricsMaxAgeMs }, config.metricsHost, config.metricsPort, logger);
    } catch (err) {
      clearInterval(healthRefresh);
      listener.stopAccepting();
      server.forceShutdown();
      listener.destroyAll();
      await invalidations?.close();
      await engine.close();
      throw new Error(`cannot serve metrics on ${config.metricsHost}:${config.metricsPort}: ${(err as Error).message}`, { cause: err });
    }
  }
  logger.info("tiercache listening", {
    address,
    storage: durable?.name ?? "memory",
    redis: durable instanceof RedisTier ? (config.redisUrl ? "url" : config.redisClusterNodes ? "cluster" : "sentinel") : undefined,
    dataDir: durable?.name === "lmdb" ? config.dataDir : undefined,
    metrics: http ? `http://${config.metricsHost}:${http.port}/metrics` : undefined,
    transport: transportName(config),
    access: access ? "tokens" : "open",
  });

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= (async () => {
      draining = true;
      clearInterval(healthRefresh);
      health.setStatus("", "NOT_SERVING");
      health.setStatus(SERVICE_NAME, "NOT_SERVING");
      logger.info("draining", { graceMs: config.shutdownGraceMs });
      listener.stopAccepting();
      closing.abort();
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
      listener.destroyAll(); // what grpc-js never took (a stalled handshake) or left half-closed
      // Closing is bounded too (the grace is spent): a stalled or unreachable Redis is disconnected after CLOSE_BUDGET_MS.
      http?.server.close();
      http?.server.closeAllConnections();
      let timer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([
        (async () => {
          await invalidations?.close(CLOSE_BUDGET_MS / 2);
          await engine.close();
          return true;
        })(),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_BUDGET_MS))),
      ]);
      clearTimeout(timer);
      if (!closed) {
        logger.warn("closing the durable tier took too long; disconnecting", { budgetMs: CLOSE_BUDGET_MS });
        invalidations?.disconnect();
        if (durable instanceof RedisTier) durable.disconnect();
      }
      logger.info("stopped");
    })());

  const connections = () => ({ open: listener.connections, accepted: listener.accepted, refused: listener.refused });
  const invalidationStats = () => invalidations?.stats();
  return { address, port, metricsPort: http?.port, engine, durableBreaker, readiness, connections, invalidationStats, shutdown };
}
