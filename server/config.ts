import { resolve } from "node:path";
import type { EvictionPolicyName } from "../core/memory-tier.js";
import type { LogLevel } from "./logger.js";

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

type Parser<T> = (raw: string) => T | undefined;

interface OptionSpec<K extends keyof ServerConfig> {
  key: K;
  flag: string;
  env: string;
  parse: Parser<ServerConfig[K]>;
  expected: string;
  default: ServerConfig[K] | (() => ServerConfig[K]);
  description: string;
}

const UNITS: Record<string, number> = {
  "": 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, k: 1024, m: 1024 ** 2, g: 1024 ** 3,
};
const DURATIONS: Record<string, number> = { "": 1, ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

function withUnit(raw: string, units: Record<string, number>, min: number): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw);
  if (!match) return undefined;
  const factor = units[match[2]!.toLowerCase()];
  if (factor === undefined) return undefined;
  const value = Math.round(Number(match[1]) * factor);
  return Number.isSafeInteger(value) && value >= min ? value : undefined;
}

const integer =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    if (!/^\s*\d+\s*$/.test(raw)) return undefined;
    const value = Number(raw);
    return value >= min && value <= max ? value : undefined;
  };
const bytes = (min: number): Parser<number> => (raw) => withUnit(raw, UNITS, min);
const duration = (min: number): Parser<number> => (raw) => withUnit(raw, DURATIONS, min);
const oneOf =
  <T extends string>(...values: T[]): Parser<T> =>
  (raw) =>
    values.find((value) => value === raw.trim());
const text: Parser<string> = (raw) => (raw.trim() === "" ? undefined : raw.trim());

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
  option({ key: "memoryMaxEntries", flag: "--memory-max-entries", env: "TIERCACHE_MEMORY_MAX_ENTRIES", parse: integer(1, 1e9), expected: "an integer from 1 to 1000000000", default: 100_000, description: "memory tier bound per namespace: entries" }),
  option({ key: "memoryMaxBytes", flag: "--memory-max-bytes", env: "TIERCACHE_MEMORY_MAX_BYTES", parse: bytes(1024), expected: "a size of at least 1 KiB such as 64MiB or 1GiB", default: 256 * 1024 ** 2, description: "memory tier bound per namespace: bytes" }),
  option({ key: "memoryPolicy", flag: "--memory-policy", env: "TIERCACHE_MEMORY_POLICY", parse: oneOf<EvictionPolicyName>("lru", "fifo", "lfu", "tinylfu"), expected: "lru, fifo, lfu or tinylfu", default: "lru", description: "memory tier eviction policy" }),
  option({ key: "maxKeyBytes", flag: "--max-key-bytes", env: "TIERCACHE_MAX_KEY_BYTES", parse: integer(1, 65536), expected: "an integer from 1 to 65536", default: 1024, description: "longest key in UTF-8 bytes" }),
  option({ key: "maxValueBytes", flag: "--max-value-bytes", env: "TIERCACHE_MAX_VALUE_BYTES", parse: bytes(1), expected: "a size such as 1MiB", default: 1024 ** 2, description: "largest value" }),
  option({ key: "maxBatch", flag: "--max-batch", env: "TIERCACHE_MAX_BATCH", parse: integer(1, 1e6), expected: "an integer from 1 to 1000000", default: 1000, description: "most items per batch or stream message" }),
  option({ key: "maxMessageBytes", flag: "--max-message-bytes", env: "TIERCACHE_MAX_MESSAGE_BYTES", parse: bytes(1024), expected: "a size such as 16MiB", default: 16 * 1024 ** 2, description: "largest gRPC message" }),
  option({ key: "maxNamespaces", flag: "--max-namespaces", env: "TIERCACHE_MAX_NAMESPACES", parse: integer(1, 1e6), expected: "an integer from 1 to 1000000", default: 1000, description: "most namespaces in use at once" }),
  option({ key: "shutdownGraceMs", flag: "--shutdown-grace", env: "TIERCACHE_SHUTDOWN_GRACE", parse: duration(0), expected: "a duration such as 10s", default: 10_000, description: "how long SIGTERM waits for in-flight calls" }),
  option({ key: "logLevel", flag: "--log-level", env: "TIERCACHE_LOG_LEVEL", parse: oneOf<LogLevel>("debug", "info", "warn", "error"), expected: "debug, info, warn or error", default: "info", description: "log level" }),
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
    const value = spec.parse(raw);
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
    const def = typeof spec.default === "function" ? spec.default() : spec.default;
    return `  ${`${spec.flag} <value>`.padEnd(30)} ${spec.description} [${spec.env}, default ${JSON.stringify(def)}]`;
  });
  return ["Usage: tiercache serve [options]", "", "Options (flags override TIERCACHE_* environment variables):", ...rows, "  --help                         show this help"].join("\n");
}
