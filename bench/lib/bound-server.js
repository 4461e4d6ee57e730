import { Server, ServerCredentials } from "@grpc/grpc-js";

const passThrough = (bytes) => bytes;

/** A grpc-js server for a baseline child: messages of up to 16 MiB each way, as tiercache allows. */
export function rawServer() {
  return new Server({ "grpc.max_receive_message_length": 16 * 1024 * 1024, "grpc.max_send_message_length": 16 * 1024 * 1024 });
}

/** A method definition whose messages are raw bytes: the handler decodes and encodes them itself, or not at all. */
export function rawMethod(path, requestStream = false, responseStream = false) {
  return { path, requestStream, responseStream, requestSerialize: passThrough, requestDeserialize: passThrough, responseSerialize: passThrough, responseDeserialize: passThrough };
}

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
