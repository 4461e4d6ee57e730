import { createServer, Socket, type Server } from "node:net";

/**
 * A TCP proxy on 127.0.0.1 between a client and a server, with runtime fault
 * knobs (STYLE.md item 9): latency, pause, drop, reset, refuse.
 */
export interface TcpProxy {
  readonly host: string;
  /** The port clients connect to (stable across `refuse`). */
  readonly port: number;
  /** Delay added to every chunk, both directions, in ms (order is kept). Applies to chunks read from now on. */
  latencyMs: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections open now. */
  readonly open: number;
  /** Bytes read from clients so far (counted on arrival, paused or not). */
  readonly bytesFromClients: number;
  /** Holds all data (both directions) until `resume`; connections stay open. */
  pause(): void;
  resume(): void;
  /** Closes every open connection with a FIN (new connections are accepted). */
  drop(): void;
  /** Closes every open connection with an RST (socket.resetAndDestroy). */
  reset(): void;
  /** Stops listening, so new connections get ECONNREFUSED; open ones stay. */
  refuse(): Promise<void>;
  /** Listens again on the same port. */
  accept(): Promise<void>;
  close(): Promise<void>;
}

interface Pending {
  readonly chunk: Buffer;
  readonly due: number;
}

/** Starts a proxy on a free loopback port forwarding to `target`. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const host = "127.0.0.1";
  const pairs = new Set<[Socket, Socket]>();
  const pumps = new Set<() => void>();
  let paused = false;
  let accepted = 0;
  let bytesFromClients = 0;

  const onConnection = (client: Socket) => {
    accepted++;
    const upstream = new Socket();
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const destroyBoth = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => (bytesFromClients += chunk.length));
    client.on("error", destroyBoth).on("close", destroyBoth);
    upstream.on("error", destroyBoth).on("close", destroyBoth);
    pipe(client, upstream);
    pipe(upstream, client);
    upstream.connect(target.port, target.host);
  };

  /** Forwards `from` -> `to`, each chunk after `latencyMs`, in order, held while paused. */
  const pipe = (from: Socket, to: Socket) => {
    const queue: Pending[] = [];
    let timer: NodeJS.Timeout | undefined;
    const pump = () => {
      timer = undefined;
      while (!paused && queue.length > 0) {
        const wait = queue[0]!.due - Date.now();
        if (wait > 0) {
          timer = setTimeout(pump, wait);
          return;
        }
        if (!to.destroyed) to.write(queue.shift()!.chunk);
        else queue.length = 0;
      }
    };
    pumps.add(pump);
    from.on("data", (chunk: Buffer) => {
      queue.push({ chunk, due: Date.now() + proxy.latencyMs });
      if (timer === undefined) pump();
    });
    from.on("close", () => {
      pumps.delete(pump);
      clearTimeout(timer);
    });
  };

  let server: Server;
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer(onConnection);
      s.once("error", reject);
      s.listen(port, host, () => resolve(s));
    });
  server = await listen(0);
  const port = (server.address() as { port: number }).port;
  let listening = true;

  const proxy: TcpProxy = {
    host,
    port,
    latencyMs: 0,
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    get bytesFromClients() {
      return bytesFromClients;
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      for (const pump of [...pumps]) pump();
    },
    drop() {
      for (const [a, b] of [...pairs]) {
        a.destroy();
        b.destroy();
      }
    },
    reset() {
      for (const [a, b] of [...pairs]) {
        if (!a.destroyed) a.resetAndDestroy();
        if (!b.destroyed) b.resetAndDestroy();
      }
    },
    async refuse() {
      if (!listening) return;
      listening = false;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // close() waits for open connections; they are not ours to end here
        setImmediate(resolve);
      });
    },
    async accept() {
      if (listening) return;
      server = await listen(port);
      listening = true;
    },
    async close() {
      proxy.drop();
      if (listening) await new Promise<void>((resolve) => server.close(() => resolve()));
      listening = false;
    },
  };
  return proxy;
}
