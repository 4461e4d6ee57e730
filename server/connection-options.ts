import type { ServerOptions } from "@grpc/grpc-js";
import type { ServerConfig } from "./config.js";
import type { ConnectionLimits } from "./guarded-listener.js";
import { DEFAULT_HEARTBEAT_MS } from "./rpc/watch-stream.js";

type ConnectionSettings = Pick<
  ServerConfig,
  "maxConnections" | "handshakeTimeoutMs" | "connectionIdleTimeoutMs" | "maxConnectionAgeMs" | "maxConnectionAgeGraceMs" | "maxDeadlineMs"
>;

/** The grpc-js server options for idle connections and connection age ("off" leaves grpc-js's unlimited default). */
export function connectionOptions(config: ConnectionSettings): ServerOptions {
  return {
    ...(config.connectionIdleTimeoutMs !== "off" && { "grpc.max_connection_idle_ms": config.connectionIdleTimeoutMs }),
    ...(config.maxConnectionAgeMs !== "off" && { "grpc.max_connection_age_ms": config.maxConnectionAgeMs }),
    ...(config.maxConnectionAgeGraceMs !== "off" && { "grpc.max_connection_age_grace_ms": config.maxConnectionAgeGraceMs }),
  };
}

/**
 * What the listener enforces itself. A connection silent for a whole idle
 * timeout was sent GOAWAY by grpc-js and did not close. The silence period is
 * never shorter than what a working connection may be quiet for: a call
 * waiting on its deadline (at most `--max-deadline`), or a Watch stream
 * between two heartbeats.
 */
export function connectionLimits(config: ConnectionSettings): ConnectionLimits {
  const idle = config.connectionIdleTimeoutMs;
  return {
    maxConnections: config.maxConnections,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    silenceTimeoutMs: idle === "off" ? undefined : Math.max(idle, config.maxDeadlineMs, 2 * DEFAULT_HEARTBEAT_MS),
  };
}
