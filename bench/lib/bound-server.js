import { ServerCredentials } from "@grpc/grpc-js";

/**
 * Binds a baseline child's grpc-js `server` to a free loopback port and
 * returns what serveChild expects of it: its address, CPU time and GC hooks,
 * and a stop that shuts the server down and quits its ioredis client (if any).
 */
export async function boundServer(server, redis) {
  const port = await new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return {
    info: { address: `127.0.0.1:${port}`, port },
    cpu: () => process.cpuUsage(),
    gc: () => globalThis.gc?.(),
    async stop() {
      await new Promise((resolve) => server.tryShutdown(resolve));
      await redis?.quit();
    },
  };
}
