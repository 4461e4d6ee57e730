import { totalmem } from "node:os";
import { resolve } from "node:path";
import { MAX_TIMER_MS } from "../core/clock.js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../core/message-limits.js";
import { NAMESPACE_OVERHEAD_BYTES } from "./engine/cache-engine.js";
import type { EvictionPolicyName } from "../core/memory-tier.js";
import type { LogLevel } from "./logger.js";
import { bytes, duration, formatBytes, formatDuration, fraction, integer, oneOf, orOff, text, type Parser } from "./config-values.js";
import { parseNamespaceSettings, type NamespaceOverrides } from "./namespace-config.js";
import { LMDB_TIER_MAX_KEY_BYTES } from "./tiers/lmdb-keys.js";
import { checkRedisUrl, parseHostPort, urlHasPassword } from "./tiers/redis-connection.js";
import { tokensOption, type AccessGrant } from "./security/tokens.js";
import { pemFile, securityProblem, switchValue } from "./security/transport.js";

/** Where values are kept below the memory tier. */
export type StorageKind = "lmdb" | "memory" | "redis";

/** The server's resolved configuration: every field set, every value checked. */
export interface ServerConfig {
  /** Address to listen on. @default "127.0.0.1" */
  host: string;
  /** Port to listen on; 0 picks a free one. @default 50051 */
  port: number;
  /** Durable tier: "lmdb" (embedded LMDB store in dataDir), "redis", or "memory" (none). @default "lmdb" */
  storage: StorageKind;
  /** Redis server URL (redis:// or rediss://, user and password in the URL). @default none */
  redisUrl: string | undefined;
  /** Redis Cluster seed nodes, "host:port" comma-separated. @default none */
  redisClusterNodes: readonly string[] | undefined;
  /** Redis Sentinel addresses, "host:port" comma-separated. @default none */
  redisSentinels: readonly string[] | undefined;
  /** Name of the master the Sentinels watch. @default "mymaster" */
  redisSentinelName: string;
  /** Password of Redis: for Cluster nodes, the Sentinel-managed master, or a redisUrl that carries none. @default none */
  redisPassword: string | undefined;
  /** Prefix of every Redis key: `<prefix>:{<namespace>}:<key>`. @default "tiercache" */
  redisKeyPrefix: string;
  /** Per-attempt timeout of a Redis command, in ms. @default 500 */
  redisTimeoutMs: number;
  /** Retries of idempotent Redis commands. @default 2 */
  redisRetries: number;
  /** How long the Redis circuit breaker stays open before probing, in ms. @default 2000 */
  redisBreakerResetMs: number;
  /** Accept writes into memory only (reported as degraded) while Redis is unavailable. @default false */
  degradedWrites: boolean;
  /** Directory of the embedded store. @default "./tiercache-data" */
  dataDir: string;
  /** TTL applied when a write gives none, in ms; 0 = no expiry. @default 0 */
  defaultTtlMs: number;
  /** Fraction (0..1) by which TTLs are randomly shortened so keys set together do not expire together. @default 0 */
  ttlJitter: number;
  /** Settings of particular namespaces, overriding the server-wide ones. @default none */
  namespaces: NamespaceOverrides;
  /** Memory tier bound per namespace: entries. @default 100000 */
  memoryMaxEntries: number;
  /** Memory tier bound per namespace: bytes. @default 268435456 (256 MiB) */
  memoryMaxBytes: number;
  /** Memory tier eviction policy. @default "lru" */
  memoryPolicy: EvictionPolicyName;
  /** Longest key, in UTF-8 bytes; at most 1905 with the embedded store (LMDB's key limit). @default 1024 */
  maxKeyBytes: number;
  /** Largest value, in bytes. @default 1048576 (1 MiB) */
  maxValueBytes: number;
  /** Values of at least this many bytes are stored zstd-compressed; "off" never compresses. @default 1024 */
  compressionThreshold: number | "off";
  /** zstd compression level (1 fastest .. 19 smallest). @default 1 */
  compressionLevel: number;
  /** Most items in one batch or stream message. @default 1000 */
  maxBatch: number;
  /** Largest gRPC message, in bytes. @default 16777216 (16 MiB) */
  maxMessageBytes: number;
  /** Most namespaces holding data at once (empty ones are forgotten). @default 1000 */
  maxNamespaces: number;
  /** One bound on what the memory tiers of all namespaces hold together, in bytes. @default a quarter of the machine's memory, at most 1 GiB */
  maxMemoryBytes: number;
  /** Most GetOrLease leases held at once; past it no lease is granted. @default 100000 */
  maxLeases: number;
  /** On SIGTERM, how long in-flight calls may take before they are cut, in ms. @default 10000 */
  shutdownGraceMs: number;
  /** Log level. @default "info" */
  logLevel: LogLevel;
  /** Port of the Prometheus /metrics HTTP endpoint; "off" serves none. @default "off" */
  metricsPort: number | "off";
  /** Address of the /metrics endpoint. @default "127.0.0.1" */
  metricsHost: string;
  /** Namespaces with per-namespace series of their own on /metrics; the rest are summed under namespace="_other". @default 500 */
  metricsMaxNamespaces: number;
  /** How long one rendering of /metrics is served to every scraper; 0 renders per scrape (concurrent scrapes still share one). @default 1000 */
  metricsMaxAgeMs: number;

  // Security (see server/security/): transport, access tokens, per-call limits.
  /** Server certificate chain, PEM; TLS is on when it is set. @default none (plaintext) */
  tlsCert: Buffer | undefined;
  /** Private key of `tlsCert`, PEM. @default none */
  tlsKey: Buffer | undefined;
  /** CA certificate(s), PEM, that must sign client certificates: mutual TLS when set. @default none */
  tlsCa: Buffer | undefined;
  /** Serve plaintext on a non-loopback address. @default false */
  allowInsecure: boolean;
  /** Access tokens (hashed); access control is on when set. @default none (no access control) */
  tokens: readonly AccessGrant[] | undefined;
  /** Serve without access tokens on a non-loopback address. @default false */
  allowUnauthenticated: boolean;
  /** Most concurrent calls (HTTP/2 streams) per client connection. @default 100 */
  maxConcurrentStreams: number;
  /** Longest a call may run, in ms; a call with no deadline or a later one is cut here. @default 60000 */
  maxDeadlineMs: number;

  // Server-wide bounds on connections and Watch (see server/guarded-listener.ts, server/rpc/watch-stream.ts).
  /** Most client connections open at once; one more is closed as soon as it is accepted. @default 1000 */
  maxConnections: number;
  /** A connection that sends no handshake bytes (TLS or HTTP/2) for this long is closed, in ms. @default 10000 */
  handshakeTimeoutMs: number;
  /** A connection without calls for this long is asked to close (GOAWAY), in ms; "off" never. @default 300000 (5 min) */
  connectionIdleTimeoutMs: number | "off";
  /** A connection older than this (±10 % jitter) is asked to reconnect (GOAWAY), in ms; "off" never. @default 3600000 (1 h) */
  maxConnectionAgeMs: number | "off";
  /** How long calls on an aged connection may still run before it is cut (Watch streams then resume on a new one), in ms; "off" waits for them. @default 60000 */
  maxConnectionAgeGraceMs: number | "off";
  /** Most Watch streams open at once. @default 1000 */
  maxWatchers: number;
  /** Most namespaces (cursors) one Watch call may name. @default 1000 */
  maxWatchNamespaces: number;
  /** Watch history kept for resuming watchers, all namespaces together, in estimated bytes. @default 33554432 (32 MiB) */
  watchHistoryBytes: number;
}

/** The default of --max-memory: a quarter of the machine's memory, at most 1 GiB. */
export function defaultMaxMemory(): number {
  return Math.min(1024 ** 3, Math.floor(totalmem() / 4));
}

/** A configuration value that cannot be used; `option` names the flag. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(message);
  }
}

interface OptionSpec<K extends keyof ServerConfig> {
  key: K;
  flag: string;
  env: string;
  parse: Parser<ServerConfig[K]>;
  /** A flag that takes no value: `--flag` alone means "true". */
  isSwitch?: true;
  /** Values still accepted but renamed: old value -> the value it means now (a notice says so). */
  deprecatedValues?: Readonly<Record<string, string>>;
  expected: string;
  default: ServerConfig[K] | (() => ServerConfig[K]);
  description: string;
}

const namespaceOverrides: Parser<NamespaceOverrides> = parseNamespaceSettings;

const redisUrl: Parser<string> = (raw) => {
  try {
    checkRedisUrl(raw.trim());
  } catch (err) {
    // checkRedisUrl's messages never quote the URL.
    throw new Error(`expected a redis:// or rediss:// URL: ${(err as Error).message} (the value is not repeated: it may hold a password)`);
  }
  return raw.trim();
};

const hostPorts =
  (option: string): Parser<readonly string[]> =>
  (raw) => {
    const list = raw.split(",").map((part) => part.trim()).filter((part) => part !== "");
    if (list.length === 0) return undefined;
    for (const part of list) parseHostPort(part, option);
    return list;
  };

/** A duration a Node timer can hold (at most 2^31-1 ms, about 24 days). */
const timerDuration =
  (min: number): Parser<number> =>
  (raw) => {
    const ms = duration(min)(raw);
    return ms !== undefined && ms <= MAX_TIMER_MS ? ms : undefined;
  };

function option<K extends keyof ServerConfig>(spec: OptionSpec<K>): OptionSpec<K> {
  return spec;
}

/** Every option: its flag, environment variable, parser and default (the README's table comes from here). */
export const OPTIONS = [
  option({ key: "host", flag: "--host", env: "TIERCACHE_HOST", parse: text, expected: "a host name or IP address", default: "127.0.0.1", description: "address to listen on" }),
  option({ key: "port", flag: "--port", env: "TIERCACHE_PORT", parse: integer(0, 65535), expected: "an integer from 0 to 65535", default: 50051, description: "port to listen on (0 = any free port)" }),
  option({ key: "storage", flag: "--storage", env: "TIERCACHE_STORAGE", parse: oneOf<StorageKind>("lmdb", "memory", "redis"), deprecatedValues: { local: "lmdb" }, expected: '"lmdb", "memory" or "redis"', default: "lmdb", description: "durable tier: embedded LMDB store in --data-dir, none, or Redis (the default when --redis-url, --redis-cluster-nodes or --redis-sentinels is set)" }),
  option({ key: "redisUrl", flag: "--redis-url", env: "TIERCACHE_REDIS_URL", parse: redisUrl, expected: "a redis:// or rediss:// URL", default: undefined, description: "Redis server URL; turns the Redis tier on" }),
  option({ key: "redisClusterNodes", flag: "--redis-cluster-nodes", env: "TIERCACHE_REDIS_CLUSTER_NODES", parse: hostPorts("--redis-cluster-nodes"), expected: "host:port,host:port,...", default: undefined, description: "Redis Cluster seed nodes" }),
  option({ key: "redisSentinels", flag: "--redis-sentinels", env: "TIERCACHE_REDIS_SENTINELS", parse: hostPorts("--redis-sentinels"), expected: "host:port,host:port,...", default: undefined, description: "Redis Sentinel addresses" }),
  option({ key: "redisSentinelName", flag: "--redis-sentinel-name", env: "TIERCACHE_REDIS_SENTINEL_NAME", parse: text, expected: "a master name", default: "mymaster", description: "master name the Sentinels watch" }),
  option({ key: "redisPassword", flag: "--redis-password", env: "TIERCACHE_REDIS_PASSWORD", parse: (raw) => (raw === "" ? undefined : raw), expected: "a password", default: undefined, description: "password of Redis: for Cluster nodes, the Sentinel master, or a --redis-url without one (prefer the environment variable)" }),
  option({ key: "redisKeyPrefix", flag: "--redis-key-prefix", env: "TIERCACHE_REDIS_KEY_PREFIX", parse: (raw) => (/^[^{}\s]{1,64}$/.test(raw) ? raw : undefined), expected: "1 to 64 characters without braces or spaces", default: "tiercache", description: "prefix of every Redis key" }),
  option({ key: "redisTimeoutMs", flag: "--redis-timeout", env: "TIERCACHE_REDIS_TIMEOUT", parse: timerDuration(1), expected: "a duration from 1ms to 24d such as 500ms", default: 500, description: "per-attempt timeout of a Redis command" }),
  option({ key: "redisRetries", flag: "--redis-retries", env: "TIERCACHE_REDIS_RETRIES", parse: integer(0, 10), expected: "an integer from 0 to 10", default: 2, description: "retries of idempotent Redis commands" }),
  option({ key: "redisBreakerResetMs", flag: "--redis-breaker-reset", env: "TIERCACHE_REDIS_BREAKER_RESET", parse: timerDuration(1), expected: "a duration from 1ms to 24d such as 2s", default: 2000, description: "how long the Redis breaker stays open before probing (it closes sooner when the client reconnects and Redis answers)" }),
  option({ key: "degradedWrites", flag: "--degraded-writes", env: "TIERCACHE_DEGRADED_WRITES", parse: switchValue, isSwitch: true, expected: "true or false", default: false, description: "while the durable tier (Redis or LMDB) cannot take writes, keep them in memory and report them degraded" }),
  option({ key: "dataDir", flag: "--data-dir", env: "TIERCACHE_DATA_DIR", parse: (raw) => (raw.trim() === "" ? undefined : resolve(raw.trim())), expected: "a directory path", default: () => resolve("tiercache-data"), description: "directory of the embedded store" }),
  option({ key: "defaultTtlMs", flag: "--default-ttl", env: "TIERCACHE_DEFAULT_TTL", parse: duration(0), expected: "a duration such as 0, 500ms, 30s, 5m, 1h, 7d", default: 0, description: "TTL of writes that give none (0 = no expiry)" }),
  option({ key: "ttlJitter", flag: "--ttl-jitter", env: "TIERCACHE_TTL_JITTER", parse: fraction(0, 1), expected: "a number from 0 to 1", default: 0, description: "shorten each TTL by a random fraction up to this" }),
  option({ key: "namespaces", flag: "--namespaces", env: "TIERCACHE_NAMESPACES", parse: namespaceOverrides, expected: 'per-namespace settings as JSON or @file.json, e.g. {"sessions":{"defaultTtl":"30m","policy":"lfu"}}', default: () => new Map(), description: "settings of particular namespaces (JSON or @file)" }),
  option({ key: "memoryMaxEntries", flag: "--memory-max-entries", env: "TIERCACHE_MEMORY_MAX_ENTRIES", parse: integer(1, 1e9), expected: "an integer from 1 to 1000000000", default: 100_000, description: "memory tier bound per namespace: entries" }),
  option({ key: "memoryMaxBytes", flag: "--memory-max-bytes", env: "TIERCACHE_MEMORY_MAX_BYTES", parse: bytes(1024), expected: "a size of at least 1 KiB such as 64MiB or 1GiB", default: 256 * 1024 ** 2, description: "memory tier bound per namespace: bytes" }),
  option({ key: "memoryPolicy", flag: "--memory-policy", env: "TIERCACHE_MEMORY_POLICY", parse: oneOf<EvictionPolicyName>("lru", "fifo", "lfu", "tinylfu"), expected: "lru, fifo, lfu or tinylfu", default: "lru", description: "memory tier eviction policy" }),
  option({ key: "maxKeyBytes", flag: "--max-key-bytes", env: "TIERCACHE_MAX_KEY_BYTES", parse: integer(1, 65536), expected: "an integer from 1 to 65536", default: 1024, description: `longest key in UTF-8 bytes (at most ${LMDB_TIER_MAX_KEY_BYTES} with --storage lmdb)` }),
  option({ key: "maxValueBytes", flag: "--max-value-bytes", env: "TIERCACHE_MAX_VALUE_BYTES", parse: bytes(1), expected: "a size such as 1MiB", default: 1024 ** 2, description: "largest value" }),
  option({ key: "compressionThreshold", flag: "--compression-threshold", env: "TIERCACHE_COMPRESSION_THRESHOLD", parse: orOff(bytes(1)), expected: 'a size such as 1KiB, or "off"', default: 1024, description: "zstd-compress values of at least this size" }),
  option({ key: "compressionLevel", flag: "--compression-level", env: "TIERCACHE_COMPRESSION_LEVEL", parse: integer(1, 19), expected: "an integer from 1 to 19", default: 1, description: "zstd level" }),
  option({ key: "maxBatch", flag: "--max-batch", env: "TIERCACHE_MAX_BATCH", parse: integer(1, 1e6), expected: "an integer from 1 to 1000000", default: 1000, description: "most items per batch or stream message" }),
  option({ key: "maxMessageBytes", flag: "--max-message-bytes", env: "TIERCACHE_MAX_MESSAGE_BYTES", parse: bytes(1024), expected: "a size such as 16MiB", default: DEFAULT_MAX_MESSAGE_BYTES, description: "largest gRPC message" }),
  option({ key: "maxNamespaces", flag: "--max-namespaces", env: "TIERCACHE_MAX_NAMESPACES", parse: integer(1, 1e6), expected: "an integer from 1 to 1000000", default: 1000, description: "most namespaces holding data at once" }),
  option({ key: "maxMemoryBytes", flag: "--max-memory", env: "TIERCACHE_MAX_MEMORY", parse: bytes(16 * 1024 ** 2), expected: "a size of at least 16 MiB such as 512MiB or 4GiB", default: defaultMaxMemory, description: "one bound on the memory tiers of all namespaces together (default: a quarter of the machine's memory, at most 1 GiB)" }),
  option({ key: "maxLeases", flag: "--max-leases", env: "TIERCACHE_MAX_LEASES", parse: integer(1, 1e7), expected: "an integer from 1 to 10000000", default: 100_000, description: "most GetOrLease leases held at once" }),
  option({ key: "shutdownGraceMs", flag: "--shutdown-grace", env: "TIERCACHE_SHUTDOWN_GRACE", parse: timerDuration(0), expected: "a duration up to 24d such as 10s", default: 10_000, description: "how long SIGTERM waits for in-flight calls" }),
  option({ key: "logLevel", flag: "--log-level", env: "TIERCACHE_LOG_LEVEL", parse: oneOf<LogLevel>("debug", "info", "warn", "error"), expected: "debug, info, warn or error", default: "info", description: "log level" }),
  option({ key: "metricsPort", flag: "--metrics-port", env: "TIERCACHE_METRICS_PORT", parse: orOff(integer(0, 65535)), expected: 'a port from 0 to 65535, or "off"', default: "off", description: "serve Prometheus /metrics on this port" }),
  option({ key: "metricsMaxNamespaces", flag: "--metrics-max-namespaces", env: "TIERCACHE_METRICS_MAX_NAMESPACES", parse: integer(0, 1_000_000), expected: "an integer from 0 to 1000000", default: 500, description: "namespaces with /metrics series of their own; the rest are summed under namespace=\"_other\"" }),
  option({ key: "metricsMaxAgeMs", flag: "--metrics-max-age", env: "TIERCACHE_METRICS_MAX_AGE", parse: timerDuration(0), expected: "a duration such as 1s", default: 1000, description: "how long one rendering of /metrics is shared by every scraper" }),
  option({ key: "metricsHost", flag: "--metrics-host", env: "TIERCACHE_METRICS_HOST", parse: text, expected: "a host name or IP address", default: "127.0.0.1", description: "address of the metrics endpoint (/metrics, /healthz, /readyz, status page)" }),
  // Security: TLS / mutual TLS, access tokens, refusals on exposed addresses, per-call limits.
  option({ key: "tlsCert", flag: "--tls-cert", env: "TIERCACHE_TLS_CERT", parse: pemFile("certificate"), expected: "a PEM certificate file", default: undefined, description: "server certificate chain (PEM file); turns TLS on" }),
  option({ key: "tlsKey", flag: "--tls-key", env: "TIERCACHE_TLS_KEY", parse: pemFile("private key"), expected: "a PEM private key file", default: undefined, description: "private key of --tls-cert (PEM file)" }),
  option({ key: "tlsCa", flag: "--tls-ca", env: "TIERCACHE_TLS_CA", parse: pemFile("certificate"), expected: "a PEM certificate file", default: undefined, description: "CA (PEM file) that must sign client certificates; turns mutual TLS on" }),
  option({ key: "allowInsecure", flag: "--allow-insecure", env: "TIERCACHE_ALLOW_INSECURE", parse: switchValue, isSwitch: true, expected: "true or false", default: false, description: "allow plaintext on a non-loopback address" }),
  option({ key: "tokens", flag: "--tokens-file", env: "TIERCACHE_TOKENS", parse: tokensOption, expected: "a tokens JSON file (or, in the environment, the JSON itself)", default: undefined, description: "access tokens: JSON file (flag) or JSON (env); turns access control on" }),
  option({ key: "allowUnauthenticated", flag: "--allow-unauthenticated", env: "TIERCACHE_ALLOW_UNAUTHENTICATED", parse: switchValue, isSwitch: true, expected: "true or false", default: false, description: "allow serving without tokens on a non-loopback address" }),
  option({ key: "maxConcurrentStreams", flag: "--max-concurrent-streams", env: "TIERCACHE_MAX_CONCURRENT_STREAMS", parse: integer(1, 1e6), expected: "an integer from 1 to 1000000", default: 100, description: "most concurrent calls per client connection" }),
  option({ key: "maxDeadlineMs", flag: "--max-deadline", env: "TIERCACHE_MAX_DEADLINE", parse: timerDuration(1), expected: "a duration from 1ms to 24d such as 60s", default: 60_000, description: "longest a call may run (calls with no or a later deadline are cut)" }),
  // Server-wide bounds on connections and Watch.
  option({ key: "maxConnections", flag: "--max-connections", env: "TIERCACHE_MAX_CONNECTIONS", parse: integer(1, 1e6), expected: "an integer from 1 to 1000000", default: 1000, description: "most client connections open at once (more are closed when accepted)" }),
  option({ key: "handshakeTimeoutMs", flag: "--handshake-timeout", env: "TIERCACHE_HANDSHAKE_TIMEOUT", parse: timerDuration(1), expected: "a duration from 1ms to 24d such as 10s", default: 10_000, description: "close a connection that sends no handshake bytes for this long" }),
  option({ key: "connectionIdleTimeoutMs", flag: "--connection-idle-timeout", env: "TIERCACHE_CONNECTION_IDLE_TIMEOUT", parse: orOff(timerDuration(1)), expected: 'a duration from 1ms to 24d such as 5m, or "off"', default: 300_000, description: "close a connection without calls for this long (GOAWAY)" }),
  option({ key: "maxConnectionAgeMs", flag: "--max-connection-age", env: "TIERCACHE_MAX_CONNECTION_AGE", parse: orOff(timerDuration(1)), expected: 'a duration from 1ms to 24d such as 1h, or "off"', default: 3_600_000, description: "ask a connection older than this (+-10%) to reconnect (GOAWAY)" }),
  option({ key: "maxConnectionAgeGraceMs", flag: "--max-connection-age-grace", env: "TIERCACHE_MAX_CONNECTION_AGE_GRACE", parse: orOff(timerDuration(0)), expected: 'a duration up to 24d such as 60s, or "off"', default: 60_000, description: "how long calls on an aged connection may still run before it is cut" }),
  option({ key: "maxWatchers", flag: "--max-watchers", env: "TIERCACHE_MAX_WATCHERS", parse: integer(1, 1e6), expected: "an integer from 1 to 1000000", default: 1000, description: "most Watch streams open at once" }),
  option({ key: "maxWatchNamespaces", flag: "--max-watch-namespaces", env: "TIERCACHE_MAX_WATCH_NAMESPACES", parse: integer(1, 1e6), expected: "an integer from 1 to 1000000", default: 1000, description: "most namespaces one Watch call may name" }),
  option({ key: "watchHistoryBytes", flag: "--watch-history-bytes", env: "TIERCACHE_WATCH_HISTORY_BYTES", parse: bytes(0), expected: "a size such as 32MiB (0 keeps none)", default: 32 * 1024 ** 2, description: "Watch history kept for resuming watchers, all namespaces together" }),
] as const;

type AnySpec = OptionSpec<keyof ServerConfig>;

function parseFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      const previous = argv[i - 1];
      // After "--flag=" the stray argument is likely the flag's value, maybe a secret: not repeated.
      if (previous?.startsWith("--") && previous.endsWith("=")) throw new ConfigError(previous.slice(0, -1), `unexpected argument after ${previous} (its value is not repeated here): write ${previous}VALUE with no space, or ${previous.slice(0, -1)} VALUE`);
      throw new ConfigError(arg, `unexpected argument ${JSON.stringify(arg)} (options start with --; see --help)`);
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const spec = (OPTIONS as readonly AnySpec[]).find((candidate) => candidate.flag === name);
    if (!spec) throw new ConfigError(name, `unknown option ${name} (see --help)`);
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (spec.isSwitch) value = "true";
    else value = argv[++i];
    if (value === undefined) throw new ConfigError(name, `option ${name} needs a value`);
    flags.set(name, value);
  }
  return flags;
}

/**
 * Resolves the configuration from command-line flags (first), `TIERCACHE_*`
 * environment variables (second) and defaults. Throws {@link ConfigError}
 * naming the first option whose value cannot be used. A value still accepted
 * under an old name (`--storage local`) is used as its new name, and
 * `onDeprecated` gets a message saying so.
 */
export function resolveConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  onDeprecated: (message: string) => void = () => {},
): ServerConfig {
  const flags = parseFlags(argv);
  const config: Partial<Record<keyof ServerConfig, unknown>> = {};
  const sources = new Map<keyof ServerConfig, Given>();
  for (const spec of OPTIONS as readonly AnySpec[]) {
    const fromFlag = flags.get(spec.flag);
    const fromEnv = env[spec.env];
    let [raw, source] = fromFlag !== undefined ? [fromFlag, spec.flag] : fromEnv !== undefined && fromEnv !== "" ? [fromEnv, spec.env] : [undefined, ""];
    if (raw !== undefined) sources.set(spec.key, { source, raw: raw.trim(), env: spec.env, envToo: fromFlag !== undefined && fromEnv !== undefined && fromEnv !== "" });
    const deprecated = spec.deprecatedValues;
    const renamed = raw !== undefined && deprecated !== undefined && Object.hasOwn(deprecated, raw.trim()) ? deprecated[raw.trim()] : undefined;
    if (renamed !== undefined) {
      onDeprecated(`${source} ${JSON.stringify(raw)} is deprecated: use ${JSON.stringify(renamed)}, which means the same`);
      raw = renamed;
    }
    if (raw === undefined) {
      config[spec.key] = typeof spec.default === "function" ? spec.default() : spec.default;
      continue;
    }
    let value: ServerConfig[keyof ServerConfig] | undefined;
    try {
      value = spec.parse(raw);
    } catch (err) {
      throw new ConfigError(spec.flag, `invalid ${source}: ${(err as Error).message}`);
    }
    if (value === undefined) {
      throw new ConfigError(spec.flag, `invalid ${source} ${JSON.stringify(raw)}: expected ${spec.expected}`);
    }
    config[spec.key] = value;
  }
  const resolved = config as ServerConfig;
  if (!sources.has("storage") && redisTargets(resolved) > 0) resolved.storage = "redis";
  checkConfig(resolved, sources);
  return resolved;
}

const REDIS_TARGETS = [
  ["redisUrl", "--redis-url"],
  ["redisClusterNodes", "--redis-cluster-nodes"],
  ["redisSentinels", "--redis-sentinels"],
] as const;

/** Where an option's value came from (a flag or a variable) and the value as given. */
interface Given {
  readonly source: string;
  readonly raw: string;
  /** The option's environment variable, and whether it was set too (the flag won). */
  readonly env: string;
  readonly envToo: boolean;
}

/** Options only the Redis tier reads (with their field names): given while the server has no Redis tier, they would be ignored. */
const REDIS_TUNING = [
  ["redisSentinelName", "--redis-sentinel-name"],
  ["redisPassword", "--redis-password"],
  ["redisKeyPrefix", "--redis-key-prefix"],
  ["redisTimeoutMs", "--redis-timeout"],
  ["redisRetries", "--redis-retries"],
  ["redisBreakerResetMs", "--redis-breaker-reset"],
] as const;

/** The option's default; the tuning options' defaults are plain values. */
function defaultOf(key: keyof ServerConfig): unknown {
  const spec = (OPTIONS as readonly AnySpec[]).find((candidate) => candidate.key === key);
  return typeof spec?.default === "function" ? spec.default() : spec?.default;
}

/** Whether the option was given: on the command line or in the environment, or (in a program's own configuration) set to other than its default. */
function given(config: ServerConfig, key: keyof ServerConfig, sources?: ReadonlyMap<keyof ServerConfig, Given>): boolean {
  if (sources !== undefined) return sources.has(key);
  const value = config[key];
  return value !== defaultOf(key) && !(key === "redisPassword" && value === "");
}

/** How a message names an option: its flag (and the variable it came from), or, in a program's configuration, its field. */
function nameOf(key: keyof ServerConfig, flag: string, sources?: ReadonlyMap<keyof ServerConfig, Given>): string {
  if (sources === undefined) return key;
  const source = sources.get(key);
  if (source === undefined || source.source === flag) return source?.envToo ? `${flag} (and ${source.env})` : flag;
  return `${flag} (by ${source.source})`;
}

/** The advice to stop giving an option: drop the flag, unset the variable (both, when both were set), or leave the field out. */
function droppingOf(key: keyof ServerConfig, flag: string, sources?: ReadonlyMap<keyof ServerConfig, Given>): string {
  if (sources === undefined) return `leave ${key} out`;
  const source = sources.get(key);
  if (source === undefined || source.source === flag) return source?.envToo ? `drop ${flag} and unset ${source.env}` : `drop ${flag}`;
  return `unset ${source.source}`;
}

/** How a message names the storage setting and the advice to make it Redis: by flag, by variable, by default, or by a program's field. */
function storageAdvice(config: ServerConfig, sources?: ReadonlyMap<keyof ServerConfig, Given>): { named: string; toRedis: string } {
  if (sources === undefined) return { named: `storage "${config.storage}" (in the program's configuration)`, toRedis: 'set storage: "redis"' };
  const storage = sources.get("storage");
  if (storage === undefined) return { named: `storage ${config.storage}, the default without --redis-url, --redis-cluster-nodes or --redis-sentinels`, toRedis: "" };
  if (storage.source === "--storage") {
    return { named: `--storage ${storage.raw}`, toRedis: storage.envToo ? "use --storage redis" : "use --storage redis (or leave --storage out, when a Redis target makes Redis the default)" };
  }
  return { named: `${storage.source} ${storage.raw}`, toRedis: `set ${storage.source}=redis (or unset it, when a Redis target makes Redis the default)` };
}

/**
 * Refuses options that nothing would read, all named at once: on a server
 * without Redis, a Redis target (the server would run unshared while the
 * operator believes it shares Redis) or a Redis tuning option, and
 * --degraded-writes on with no durable tier; with Redis,
 * --redis-sentinel-name without --redis-sentinels, and a password both in
 * --redis-url and in --redis-password. `sources` tells where options came
 * from (none: a program built the configuration itself).
 */
function checkOptionsUsed(config: ServerConfig, sources?: ReadonlyMap<keyof ServerConfig, Given>): void {
  const program = sources === undefined;
  const label = (key: keyof ServerConfig, flag: string) => nameOf(key, flag, sources);
  if (config.storage !== "redis") {
    const targets = REDIS_TARGETS.filter(([key]) => config[key] !== undefined);
    const tuning = REDIS_TUNING.filter(([key]) => given(config, key, sources));
    const degraded = config.storage === "memory" && config.degradedWrites && given(config, "degradedWrites", sources) ? [["degradedWrites", "--degraded-writes"] as const] : [];
    const unused = [...targets, ...tuning, ...degraded];
    if (unused.length === 0) return;
    const { named, toRedis } = storageAdvice(config, sources);
    const drop = `or ${unused.map(([key, flag]) => droppingOf(key, flag, sources)).join(", ")}`;
    const only = program ? 'only storage "redis" uses' : "only --storage redis uses";
    if (targets.length > 0) {
      throw new ConfigError("--storage", `invalid ${named}: ${targets.map(([key, flag]) => `${label(key, flag)} is set`).join(", ")}, and ${only} Redis; ${toRedis}, ${drop}`);
    }
    if (tuning.length > 0) {
      const needsSentinels = tuning.some(([key]) => key === "redisSentinelName");
      const target = program ? (needsSentinels ? "redisSentinels" : "one of redisUrl, redisClusterNodes, redisSentinels") : needsSentinels ? "--redis-sentinels" : "--redis-url, --redis-cluster-nodes or --redis-sentinels";
      const advice = toRedis === "" ? `give ${target}` : `${toRedis} and give ${target}`;
      const names = [...tuning, ...degraded].map(([key, flag]) => label(key, flag));
      throw new ConfigError(tuning[0]![1], `invalid ${names.join(", ")}: only the Redis tier reads ${tuning.length === 1 && degraded.length === 0 ? "it" : "them"}, and this server has none (${named}); ${advice}, ${drop}`);
    }
    throw new ConfigError("--degraded-writes", `invalid ${label("degradedWrites", "--degraded-writes")}: it keeps writes in memory while the durable tier is down, and ${named} has none; ${drop.slice(3)}`);
  }
  if (config.redisSentinels === undefined && given(config, "redisSentinelName", sources)) {
    const used = config.redisUrl !== undefined ? "redisUrl" : config.redisClusterNodes !== undefined ? "redisClusterNodes" : undefined;
    if (used !== undefined) {
      const usedName = label(used, used === "redisUrl" ? "--redis-url" : "--redis-cluster-nodes");
      throw new ConfigError("--redis-sentinel-name", `invalid ${label("redisSentinelName", "--redis-sentinel-name")}: it names the master that Sentinels watch, and this server reaches Redis by ${usedName}, not ${program ? "redisSentinels" : "--redis-sentinels"}; ${droppingOf("redisSentinelName", "--redis-sentinel-name", sources)}`);
    }
  }
  if (config.redisUrl !== undefined && given(config, "redisPassword", sources) && urlHasPassword(config.redisUrl)) {
    throw new ConfigError("--redis-password", `invalid ${label("redisPassword", "--redis-password")}: ${label("redisUrl", "--redis-url")} carries a password already; give the password in one place: ${droppingOf("redisPassword", "--redis-password", sources)}, or take it out of the URL`);
  }
}

function redisTargets(config: ServerConfig): number {
  return REDIS_TARGETS.filter(([key]) => config[key] !== undefined).length;
}

/** Refuses a configuration whose options cannot work together (also for programs that build one themselves). @throws ConfigError */
export function checkConsistency(config: ServerConfig): void {
  checkConfig(config);
}

/** checkConsistency, with messages that say where each option came from when `sources` tells (the command line and environment). */
function checkConfig(config: ServerConfig, sources?: ReadonlyMap<keyof ServerConfig, Given>): void {
  const targets = redisTargets(config);
  const program = sources === undefined;
  if (targets > 1) throw new ConfigError("--redis-url", program ? "give only one of redisUrl, redisClusterNodes and redisSentinels" : "give only one of --redis-url, --redis-cluster-nodes and --redis-sentinels");
  if (config.storage === "redis" && targets === 0) {
    throw new ConfigError("--storage", program ? 'invalid storage "redis" (in the program\'s configuration): it needs redisUrl, redisClusterNodes or redisSentinels' : "invalid --storage redis: it needs --redis-url, --redis-cluster-nodes or --redis-sentinels");
  }
  checkOptionsUsed(config, sources);
  if (config.storage === "lmdb" && config.maxKeyBytes > LMDB_TIER_MAX_KEY_BYTES) {
    throw new ConfigError(
      "--max-key-bytes",
      `invalid --max-key-bytes ${config.maxKeyBytes}: the embedded store (--storage lmdb) holds keys of at most ${LMDB_TIER_MAX_KEY_BYTES} bytes; use a smaller value, or Redis or --storage memory for longer keys`,
    );
  }
  if (config.maxNamespaces * NAMESPACE_OVERHEAD_BYTES > config.maxMemoryBytes / 4) {
    throw new ConfigError(
      "--max-namespaces",
      `invalid --max-namespaces ${config.maxNamespaces}: each namespace's state takes ${NAMESPACE_OVERHEAD_BYTES / 1024} KiB of --max-memory (${config.maxMemoryBytes} bytes), and together they may take a quarter of it at most: use at most ${Math.floor(config.maxMemoryBytes / 4 / NAMESPACE_OVERHEAD_BYTES)}, or a larger --max-memory`,
    );
  }
  if (config.maxValueBytes + config.maxKeyBytes + 1024 > config.maxMessageBytes) {
    throw new ConfigError(
      "--max-message-bytes",
      `invalid --max-message-bytes ${config.maxMessageBytes}: must exceed --max-value-bytes plus --max-key-bytes plus 1 KiB (${config.maxValueBytes + config.maxKeyBytes + 1024})`,
    );
  }
  const security = securityProblem(config);
  if (security) throw new ConfigError(security.option, security.message);
}

/** The configuration with every default, for tests and embedding. */
export function defaultConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return { ...resolveConfig([], {}), ...overrides };
}

/** An option's default as the user would write it: sizes and durations with units. */
function shownDefault(spec: AnySpec): string {
  const value = typeof spec.default === "function" ? spec.default() : spec.default;
  if (value instanceof Map || value === undefined) return "none";
  if (Array.isArray(value)) return value.join(",");
  if (typeof value === "number" && spec.expected.includes("a size")) return formatBytes(value);
  if (typeof value === "number" && spec.expected.includes("a duration")) return formatDuration(value);
  return String(value);
}

/** Help text listing every option: what it does, the values it accepts, its default and its environment variable. */
export function helpText(): string {
  const rows = (OPTIONS as readonly AnySpec[]).flatMap((spec) => [
    `  ${`${spec.flag}${spec.isSwitch ? "" : " <value>"}`.padEnd(34)} ${spec.description}`,
    `  ${"".padEnd(34)} ${spec.isSwitch ? "a switch" : `accepts ${spec.expected}`}; default ${shownDefault(spec)}; env ${spec.env}`,
  ]);
  return [
    "Usage: tiercache serve [options]",
    "",
    "Options (flags override TIERCACHE_* environment variables). Sizes take B, KiB, MiB, GiB (or KB, MB, GB);",
    "durations take ms, s, m, h, d (a bare number is ms). An option that the chosen storage would not read is refused.",
    ...rows,
    `  ${"-h, --help".padEnd(34)} show this help`,
    `  ${"--version".padEnd(34)} print the version`,
  ].join("\n");
}
