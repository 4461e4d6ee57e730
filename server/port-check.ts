import { createServer } from "node:net";

/**
 * Resolves once `host:port` could be bound (and is released again); rejects
 * with a message naming the address when it cannot, e.g. because another
 * process listens there. The server checks this before it opens its durable
 * tier, so that a port in use fails fast and leaves no data directory behind.
 * Port 0 (any free port) is not checked.
 */
export function checkPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "EADDRINUSE" ? "is already in use" : err.code === "EACCES" ? "may not be used by this user" : `cannot be bound (${err.code ?? err.message})`;
      reject(new Error(`port ${port} on ${host} ${why}`, { cause: err }));
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
