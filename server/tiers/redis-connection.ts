import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { InvalidArgumentError } from "../../core/errors.js";
import type { Logger } from "../logger.js";

/** A host and port, as parsed from "host:port" or "[v6addr]:port". */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Where Redis is: one server (by URL), a Cluster (seed nodes), or a Sentinel-managed master. */
export type RedisTarget =
  | { readonly kind: "standalone"; readonly url: string }
  | { readonly kind: "cluster"; readonly nodes: readonly HostPort[] }
  | { readonly kind: "sentinel"; readonly sentinels: readonly HostPort[]; readonly name: string };

/** Settings of {@link createRedisClient}. */
export interface RedisConnectionOptions {
  readonly target: RedisTarget;
  /** ACL user for Cluster/Sentinel nodes (a standalone URL carries its own). */
  readonly username?: string | undefined;
  /** Password for Cluster nodes or the Sentinel-managed master (a standalone URL carries its own: see {@link urlWithPassword}). */
  readonly password?: string | undefined;
  /** Password of the Sentinel processes themselves. */
  readonly sentinelPassword?: string | undefined;
  /** TLS to Cluster/Sentinel nodes (a standalone URL says rediss://). */
  readonly tls: boolean;
  /** Bound on establishing one TCP (+TLS) connection, in ms. */
  readonly connectTimeoutMs: number;
  readonly logger: Logger;
}

/** An ioredis client of either shape. */
export type RedisClient = Redis | Cluster;

/** Longest pause between two reconnection attempts, in ms. */
const RECONNECT_CAP_MS = 1_000;

/**
 * Reconnection delay: exponential from 50 ms, capped at 1 s, plus up to 20%
 * jitter so that N server instances do not reconnect in lock-step. It never
 * gives up (a number every time), so the client recovers whenever Redis returns.
 */
export function reconnectDelay(attempt: number): number {
  const delay = Math.min(RECONNECT_CAP_MS, 50 * 2 ** Math.min(Math.max(attempt - 1, 0), 10));
  return Math.round(delay * (1 + Math.random() * 0.2));
}

/**
 * Parses "host:port" (or "[::1]:port").
 *
 * @throws InvalidArgumentError naming `option`.
 */
export function parseHostPort(text: string, option: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || !(port >= 1 && port <= 65535)) throw new InvalidArgumentError(`${option}: expected "host:port", got "${text}"`);
  return { host: (match[1] ?? match[2])!, port };
}

/**
 * Checks a redis:// or rediss:// URL without echoing it (it may hold a password).
 *
 * @throws InvalidArgumentError
 */
export function checkRedisUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError("redis url is not a valid URL (expected redis://[user:password@]host:port[/db])");
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new InvalidArgumentError(`redis url must start with redis:// or rediss://, not ${parsed.protocol}//`);
  }
  if (parsed.hostname === "") throw new InvalidArgumentError("redis url has no host");
  if (parsed.username !== "" && parsed.searchParams.has("password")) {
    throw new InvalidArgumentError("redis url has a user and ?password=, which would be ignored beside it: write redis://user:password@host:port (percent-encoded) instead");
  }
  const db = parsed.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db)) throw new InvalidArgumentError("redis url path must be a database number, e.g. /0");
}

/** Whether a redis:// URL carries a password, in its user part or as `?password=` (both of which ioredis reads). */
export function urlHasPassword(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.password !== "" || parsed.searchParams.has("password");
  } catch {
    return false;
  }
}

/**
 * The URL to connect to: `url` itself, or, given a `password` (an empty one
 * is none), `url` with it in its user part, percent-encoded so that ioredis
 * decodes it back exactly.
 *
 * @throws InvalidArgumentError when `url` carries a password too.
 */
export function urlWithPassword(url: string, password: string | undefined): string {
  if (password === undefined || password === "") return url;
  if (urlHasPassword(url)) throw new InvalidArgumentError("redis: the url carries a password and so does the password option; give it in one place");
  const parsed = new URL(url);
  try {
    parsed.password = encodeURIComponent(password);
  } catch {
    throw new InvalidArgumentError("redis password is not valid text (it holds a lone UTF-16 surrogate)");
  }
  return parsed.href;
}

/** A description of the target for logs: hosts and ports only, never credentials. */
export function describeTarget(target: RedisTarget): string {
  const list = (nodes: readonly HostPort[]) => nodes.map((n) => `${n.host}:${n.port}`).join(",");
  switch (target.kind) {
    case "standalone": {
      const url = new URL(target.url);
      return `${url.protocol}//${url.host}${url.pathname === "/" ? "" : url.pathname}`;
    }
    case "cluster":
      return `cluster ${list(target.nodes)}`;
    case "sentinel":
      return `sentinel ${target.name} via ${list(target.sentinels)}`;
  }
}

/**
 * Builds an ioredis client configured to fail fast, leaving every retry and
 * timeout decision to the guard (redis-guard.ts):
 *
 * - `enableOfflineQueue: false`: while disconnected a command is refused at
 *   once instead of waiting in an unbounded queue; the guard retries it with
 *   backoff (bounded by retries and the deadline), and the breaker stops the
 *   flood. (Cluster node connections keep ioredis's own per-node queue, which
 *   ioredis needs between slot refreshes; our per-attempt timeout bounds it.)
 * - `maxRetriesPerRequest: 0`, `autoResendUnfulfilledCommands: false`: a
 *   command in flight when the connection drops is rejected at once, not
 *   replayed behind the caller's back (the guard decides what is safe to retry).
 * - `retryStrategy` / `clusterRetryStrategy` / `sentinelRetryStrategy`:
 *   reconnect forever with capped backoff ({@link reconnectDelay}).
 * - `enableAutoPipelining`: off on one socket (standalone, Sentinel), where
 *   the tier corks the socket instead so that concurrent operations share one
 *   write; on for a Cluster (write-coalescing.ts).
 * - `lazyConnect: true`: nothing happens until `connect()`, which the tier calls
 *   without letting a failure escape (see {@link connectInBackground}).
 *
 * An `error` listener is always attached (an EventEmitter without one would
 * crash the process); errors go to the log at debug level, and transitions
 * between connected and not connected at info/warn.
 */
export function createRedisClient(options: RedisConnectionOptions): RedisClient {
  const { target, logger } = options;
  const connection: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: false,
    connectTimeout: options.connectTimeoutMs,
    retryStrategy: reconnectDelay,
  };
  const auth: RedisOptions = {
    ...(options.username !== undefined && { username: options.username }),
    ...(options.password !== undefined && { password: options.password }),
    ...(options.tls && { tls: {} }),
  };

  let client: RedisClient;
  switch (target.kind) {
    case "standalone":
      client = new Redis(target.url, connection);
      break;
    case "sentinel":
      client = new Redis({
        ...connection,
        ...auth,
        sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
        name: target.name,
        sentinelRetryStrategy: reconnectDelay,
        ...(options.sentinelPassword !== undefined && { sentinelPassword: options.sentinelPassword }),
        ...(options.tls && { enableTLSForSentinelMode: true }),
      });
      break;
    case "cluster": {
      const clusterOptions: ClusterOptions = {
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: reconnectDelay,
        slotsRefreshTimeout: options.connectTimeoutMs,
        redisOptions: { ...auth, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, connectTimeout: options.connectTimeoutMs },
      };
      client = new Cluster(
        target.nodes.map(({ host, port }) => ({ host, port })),
        clusterOptions,
      );
      client.on("node error", (err: unknown, address: unknown) => logger.debug("redis cluster node error", { address, error: errorCode(err) }));
      break;
    }
  }

  const where = describeTarget(target);
  let up = false;
  client.on("error", (err: unknown) => logger.debug("redis connection error", { redis: where, error: errorCode(err) }));
  client.on("ready", () => {
    if (up) return;
    up = true;
    logger.info("redis connected", { redis: where });
  });
  // ioredis emits "reconnecting" only when the connection was lost, not when we closed it: a shutdown logs no warning.
  client.on("reconnecting", () => {
    if (!up) return;
    up = false;
    logger.warn("redis connection lost; reconnecting", { redis: where });
  });
  client.on("end", () => {
    if (!up) return;
    up = false;
    logger.info("redis connection closed", { redis: where });
  });
  return client;
}

/**
 * Starts connecting and resolves once the client is ready, or its first
 * attempt failed, or `timeoutMs` passed — whichever comes first. It never
 * rejects: when Redis is down the client keeps reconnecting in the background
 * and calls fail fast meanwhile. Resolves true when ready.
 */
export function connectInBackground(client: RedisClient, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    client.connect().then(
      () => (clearTimeout(timer), resolve(true)),
      () => (clearTimeout(timer), resolve(false)),
    );
  });
}

/**
 * The clients that hold data: the client itself, or each master of a Cluster
 * (for commands such as SCAN that act on one node's keyspace).
 */
export function dataNodes(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes("master") : [client];
}

/** Closes the client: QUIT (bounded by `timeoutMs`), then drop the connection whatever happened. */
export async function closeRedisClient(client: RedisClient, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.quit().catch(() => {}),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);
  client.disconnect();
}

/** An error's code or name, for logs (never its message, which may echo arguments). */
function errorCode(err: unknown): string {
  if (!(err instanceof Error)) return "unknown";
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" ? code : err.name === "Error" ? err.message.slice(0, 80) : err.name;
}
