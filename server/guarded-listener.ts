import { once } from "node:events";
import { createServer, type Socket } from "node:net";
import type { ConnectionInjector } from "@grpc/grpc-js";
import type { Logger } from "./logger.js";

/**
 * Length of the HTTP/2 client preface. A TLS ClientHello is longer, so a
 * connection that has sent fewer bytes has not even begun its handshake.
 */
const HANDSHAKE_START_BYTES = 24;

/** The bounds a {@link GuardedListener} enforces on its connections. */
export interface ConnectionLimits {
  /** Most connections open at once; one more is closed as soon as it is accepted, before any byte is read. */
  maxConnections: number;
  /** A connection that has not sent the first bytes of a handshake (TLS or HTTP/2) within this many ms is closed. */
  handshakeTimeoutMs: number;
  /**
   * A connection on which no byte moved either way for a whole period of this
   * many ms is closed outright (a peer that ignores the idle GOAWAY, or a
   * half-closed socket). Undefined: never.
   */
  silenceTimeoutMs: number | undefined;
}

/** A TCP listener that hands its connections to grpc-js, within {@link ConnectionLimits}. */
export interface GuardedListener {
  /** The port it listens on. */
  readonly port: number;
  /** Connections open now. */
  readonly connections: number;
  /** Connections accepted since start. */
  readonly accepted: number;
  /** Connections refused since start because `maxConnections` were open. */
  readonly refused: number;
  /** Stops accepting connections (those open stay). */
  stopAccepting(): void;
  /** Destroys every connection still open (after grpc-js has shut down; sockets it never took, such as a stalled handshake, included). */
  destroyAll(): void;
}

/**
 * Listens on `host:port` with a `net.Server` we own and injects each accepted
 * connection into grpc-js (`Server#createConnectionInjector`, which runs TLS
 * per its credentials). grpc-js has no connection limit of its own; owning the
 * listener lets us refuse connections past the limit at accept time
 * (`net.Server#maxConnections`), and close connections that never start a
 * handshake or stay silent, which grpc-js's idle timeout cannot: it only
 * covers established HTTP/2 sessions and cannot close a socket whose peer
 * ignores its GOAWAY.
 */
export async function listenGuarded(injector: ConnectionInjector, host: string, port: number, limits: ConnectionLimits, logger: Logger): Promise<GuardedListener> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  let refused = 0;
  let full = false;
  const server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    accepted++;
    guard(socket, limits);
    socket.on("error", () => {}); // a reset peer: grpc-js sees the close; nothing to report
    socket.once("close", () => {
      sockets.delete(socket);
      full = false;
    });
    injector.injectConnection(socket);
  });
  server.maxConnections = limits.maxConnections;
  server.on("drop", () => {
    refused++;
    if (full) return;
    full = true; // log once each time the limit is reached, not once per refused connection
    logger.warn("refusing connections: max-connections reached", { maxConnections: limits.maxConnections });
  });
  server.listen({ host: host.replace(/^\[(.*)\]$/, "$1"), port });
  await once(server, "listening"); // rejects with the listen error (address in use, ...)
  const address = server.address();
  const boundPort = typeof address === "object" && address ? address.port : port;
  return {
    port: boundPort,
    get connections() {
      return sockets.size;
    },
    get accepted() {
      return accepted;
    },
    get refused() {
      return refused;
    },
    stopAccepting: () => {
      if (server.listening) server.close();
    },
    destroyAll: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** Closes `socket` if it does not start a handshake in time, or once it has been silent for a whole period. */
function guard(socket: Socket, limits: ConnectionLimits): void {
  const handshake = setTimeout(() => {
    if (socket.bytesRead < HANDSHAKE_START_BYTES) socket.destroy();
  }, limits.handshakeTimeoutMs);
  handshake.unref();
  let silence: NodeJS.Timeout | undefined;
  const period = limits.silenceTimeoutMs;
  if (period !== undefined) {
    let seen = -1;
    silence = setInterval(() => {
      const moved = socket.bytesRead + socket.bytesWritten;
      if (moved === seen) socket.destroy();
      seen = moved;
    }, period);
    silence.unref();
  }
  socket.once("close", () => {
    clearTimeout(handshake);
    clearInterval(silence);
  });
}
