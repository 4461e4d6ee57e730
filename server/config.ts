import { resolve } from "node:path";
import type { EvictionPolicyName } from "../core/memory-tier.js";
import type { LogLevel } from "./logger.js";
import { bytes, duration, fraction, integer, oneOf, orOff, text, type Parser } from "./config-values.js";
import { parseNamespaceSettings, type NamespaceOverrides } from "./namespace-config.js";

/** Where values are kept below the memory tier. */
export type StorageKind = "local" | "memory";

/** The server's resolved configuration: every field set, every value checked. */
export interface ServerConfig {
  /** Address to listen on. @default "127.0.0.1" */
  host: string;
  /** Port to listen on; 0 picks a free one. @default 50051 */
  port: number;
  /** Durable tier: "local" (embedded store in dataDir) or "memory" (none). @default "local" */
  storage: StorageKind;
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
  /** Longest key, in UTF-8 bytes. @default 1024 */
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
  /** Most namespaces in use at once. @default 1000 */
  maxNamespaces: number;
  /** On SIGTERM, how long in-flight calls may take before they are cut, in ms. @default 10000 */
  shutdownGraceMs: number;
  /** Log level. @default "info" */
  logLevel: LogLevel;
  /** Port of the Prometheus /metrics HTTP endpoint; "off" serves none. @default "off" */
  metricsPort: number | "off";
  /** Address of the /metrics endpoint. @default "127.0.0.1" */
  metricsHost: string;
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
  expected: string;
  default: ServerConfig[K] | (() => ServerConfig[K]);
  description: string;
}

const namespaceOverrides: Parser<NamespaceOverrides> = parseNamespaceSettings;

function option<K extends keyof ServerConfig>(spec: OptionSpec<K>): OptionSpec<K> {
  return spec;
}

/** Every option: its flag, environment variable, parser and default (the README's table comes from here). */
export const OPTIONS = [
  option({ key: "host", flag: "--host", env: "TIERCACHE_HOST", parse: text, expected: "a host name or IP address", default: "127.0.0.1", description: "address to listen on" }),
  option({ key: "port", flag: "--port", env: "TIERCACHE_PORT", parse: integer(0, 65535), expected: "an integer from 0 to 65535", default: 50051, description: "port to listen on (0 = any free port)" }),
  option({ key: "storage", flag: "--storage", env: "TIERCACHE_STORAGE", parse: oneOf<StorageKind>("local", "memory"), expected: '"local" or "memory"', default: "local", description: "durable tier: embedded store in --data-dir, or none" }),
  option({ key: "dataDir", flag: "--data-dir", env: "TIERCACHE_DATA_DIR", parse: (raw) => (raw.trim() === "" ? undefined : resolve(raw.trim())), expected: "a directory path", default: () => resolve("tiercache-data"), description: "directory of the embedded store" }),
  option({ key: "defaultTtlMs", flag: "--default-ttl", env: "TIERCACHE_DEFAULT_TTL", parse: duration(0), expected: "a duration such as 0, 500ms, 30s, 5m, 1h, 7d", default: 0, description: "TTL of writes that give none (0 = no expiry)" }),
  option({ key: "ttlJitter", flag: "--ttl-jitter", env: "TIERCACHE_TTL_JITTER", parse: fraction(0, 1), expected: "a number from 0 to 1", default: 0, description: "shorten each TTL by a random fraction up to this" }),
  option({ key: "namespaces", flag: "--namespaces", env: "TIERCACHE_NAMESPACES", parse: namespaceOverrides, expected: 'per-namespace settings as JSON or @file.json, e.g. {"sessions":{"defaultTtl":"30m","policy":"lfu"}}', default: () => new Map(), description: "settings of particular namespaces (JSON or @file)" }),
  option({ key: "memoryMaxEntries", flag: "--memory-max-entries", env: "TIERCACHE_MEMORY_MAX_ENTRIES", parse: integer(1, 1e9), expected: "an integer from 1 to 1000000000", default: 100_000, description: "memory tier bound per namespace: entries" }),
  option({ key: "memoryMaxBytes", flag: "--memory-max-bytes", env: "TIERCACHE_MEMORY_MAX_BYTES", parse: bytes(1024), expected: "a size of at least 1 KiB such as 64MiB or 1GiB", default: 256 * 1024 ** 2, description: "memory tier bound per namespace: bytes" }),
  option({ key: "memoryPolicy", flag: "--memory-policy", env: "TIERCACHE_MEMORY_POLICY", parse: oneOf<EvictionPolicyName>("lru", "fifo", "lfu", "tinylfu"), expected: "lru, fifo, lfu or tinylfu", default: "lru", description: "memory tier eviction policy" }),
  option({ key: "maxKeyBytes", flag: "--max-key-bytes", env: "TIERCACHE_MAX_KEY_BYTES", parse: integer(1, 65536), expected: "an integer from 1 to 65536", default: 1024, description: "longest key in UTF-8 bytes" }),
  option({ key: "maxValueBytes", flag: "--max-value-bytes", env: "TIERCACHE_MAX_VALUE_BYTES", parse: bytes(1), expected: "a size such as 1MiB", default: 1024 ** 2, description: "largest value" }),
  option({ key: "compressionThreshold", flag: "--compression-threshold", env: "TIERCACHE_COMPRESSION_THRESHOLD", parse: orOff(bytes(1)), expected: 'a size such as 1KiB, or "off"', default: 1024, description: "zstd-compress values of at least this size" }),
  option({ key: "compressionLevel", flag: "--compression-level", env: "TIERCACHE_COMPRESSION_LEVEL", parse: integer(1, 19), expected: "an integer from 1 to 19", default: 1, description: "zstd level" }),
  option({ key: "maxBatch", flag: "--max-batch", env: "TIERCACHE_MAX_BATCH", parse: integer(1, 1e6), expected: "an integer from 1 to 1000000", default: 1000, description: "most items per batch or stream message" }),
  option({ key: "maxMessageBytes", flag: "--max-message-bytes", env: "TIERCACHE_MAX_MESSAGE_BYTES", parse: bytes(1024), expected: "a size such as 16MiB", default: 16 * 1024 ** 2, description: "largest gRPC message" }),
  option({ key: "maxNamespaces", flag: "--max-namespaces", env: "TIERCACHE_MAX_NAMESPACES", parse: integer(1, 1e6), expected: "an integer from 1 to 1000000", default: 1000, description: "most namespaces in use at once" }),
  option({ key: "shutdownGraceMs", flag: "--shutdown-grace", env: "TIERCACHE_SHUTDOWN_GRACE", parse: duration(0), expected: "a duration such as 10s", default: 10_000, description: "how long SIGTERM waits for in-flight calls" }),
  option({ key: "logLevel", flag: "--log-level", env: "TIERCACHE_LOG_LEVEL", parse: oneOf<LogLevel>("debug", "info", "warn", "error"), expected: "debug, info, warn or error", default: "info", description: "log level" }),
  option({ key: "metricsPort", flag: "--metrics-port", env: "TIERCACHE_METRICS_PORT", parse: orOff(integer(0, 65535)), expected: 'a port from 0 to 65535, or "off"', default: "off", description: "serve Prometheus /metrics on this port" }),
  option({ key: "metricsHost", flag: "--metrics-host", env: "TIERCACHE_METRICS_HOST", parse: text, expected: "a host name or IP address", default: "127.0.0.1", description: "address of the /metrics endpoint" }),
] as const;

type AnySpec = OptionSpec<keyof ServerConfig>;

function parseFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new ConfigError(arg, `unexpected argument ${JSON.stringify(arg)} (options start with --; see --help)`);
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (!OPTIONS.some((spec) => spec.flag === name)) throw new ConfigError(name, `unknown option ${name} (see --help)`);
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else value = argv[++i];
    if (value === undefined) throw new ConfigError(name, `option ${name} needs a value`);
    flags.set(name, value);
  }
  return flags;
}

/**
 * Resolves the configuration from command-line flags (first), `TIERCACHE_*`
 * environment variables (second) and defaults. Throws {@link ConfigError}
 * naming the first option whose value cannot be used.
 */
export function resolveConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ServerConfig {
  const flags = parseFlags(argv);
  const config: Partial<Record<keyof ServerConfig, unknown>> = {};
  for (const spec of OPTIONS as readonly AnySpec[]) {
    const fromFlag = flags.get(spec.flag);
    const fromEnv = env[spec.env];
    const [raw, source] = fromFlag !== undefined ? [fromFlag, spec.flag] : fromEnv !== undefined && fromEnv !== "" ? [fromEnv, spec.env] : [undefined, ""];
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
  checkConsistency(resolved);
  return resolved;
}

function checkConsistency(config: ServerConfig): void {
  if (config.maxValueBytes + config.maxKeyBytes + 1024 > config.maxMessageBytes) {
    throw new ConfigError(
      "--max-message-bytes",
      `invalid --max-message-bytes ${config.maxMessageBytes}: must exceed --max-value-bytes plus --max-key-bytes plus 1 KiB (${config.maxValueBytes + config.maxKeyBytes + 1024})`,
    );
  }
}

/** The configuration with every default, for tests and embedding. */
export function defaultConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return { ...resolveConfig([], {}), ...overrides };
}

/** Help text listing every option. */
export function helpText(): string {
  const rows = (OPTIONS as readonly AnySpec[]).map((spec) => {
    const value = typeof spec.default === "function" ? spec.default() : spec.default;
    const def = value instanceof Map ? "none" : value;
    return `  ${`${spec.flag} <value>`.padEnd(30)} ${spec.description} [${spec.env}, default ${JSON.stringify(def)}]`;
  });
  return ["Usage: tiercache serve [options]", "", "Options (flags override TIERCACHE_* environment variables):", ...rows, "  --help                         show this help"].join("\n");
}
