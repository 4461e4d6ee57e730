import { createServer, type Server } from "node:net";

/** An address the server will listen on; `what` names it in the error ("metrics"…). */
export interface PlannedListener {
  readonly host: string;
  readonly port: number;
  readonly what?: string;
}

/**
 * Resolves once every address could be bound at once (and they are released
 * again); rejects with a message naming the first that cannot, e.g. because
 * another process listens there, or an earlier one of the list takes it
 * (`--port X --metrics-port X`). The server checks this before it opens its
 * durable tier, so that a port in use fails fast and leaves no data
 * directory behind. Port 0 (any free port) is not checked.
 */
export async function checkPortsFree(listeners: readonly PlannedListener[]): Promise<void> {
  const held: Server[] = [];
  try {
    for (const { host, port, what } of listeners) {
      if (port === 0) continue;
      held.push(await bind(host, port, what));
    }
  } finally {
    await Promise.all(held.map((probe) => new Promise<void>((resolve) => probe.close(() => resolve()))));
  }
}

/** {@link checkPortsFree} for one address. */
export function checkPortFree(host: string, port: number): Promise<void> {
  return checkPortsFree([{ host, port }]);
}

function bind(host: string, port: number, what: string | undefined): Promise<Server> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "EADDRINUSE" ? "is already in use" : err.code === "EACCES" ? "may not be used by this user" : `cannot be bound (${err.code ?? err.message})`;
      reject(new Error(`${what ? `${what} ` : ""}port ${port} on ${host} ${why}`, { cause: err }));
    });
    probe.listen({ host, port, exclusive: true }, () => resolve(probe));
  });
}
