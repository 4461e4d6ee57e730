import { RpcError, statusName } from "../../core/rpc-error.js";
import { parseClientCommand, UsageError, type ClientCommand } from "./cli-args.js";
import { cacheClient } from "./cli-connection.js";
import { parseValue, printable, type StoredBytes } from "./cli-values.js";
import { checkHealth } from "./health-check.js";
import { watchEvents } from "./watch-events.js";

/** Where the client verbs write, and the signals that end `watch`. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Calls `stop` on Ctrl-C or SIGTERM; returns a function that stops listening. */
  onInterrupt(stop: () => void): () => void;
}

const USAGE = `Usage: tiercache <command> [options]

Commands:
  serve [options]               run the server (tiercache serve --help lists its options)
  get KEY                       print the value as JSON (values JSON cannot carry, e.g. Map, BigInt,
                                NaN, as their {"$t": ...} tags); exit 1 on a miss or a stored undefined
  set KEY VALUE [--ttl MS] [--tags a,b]
                                store VALUE (JSON when it parses as JSON, else a string; an integer
                                beyond 2^53 as a BigInt), with tags
  invalidate-tags TAG[,TAG]...  hide every value written before now with any of these tags
  delete KEY                    remove KEY; exit 1 when it was not there
  stats                         print the server's statistics as JSON: {"namespaces": [...] (of
                                --namespace, else all), "server": {...} (server-wide figures)}
  health [SERVICE]              print the grpc.health.v1 status; exit 1 unless SERVING
  watch                         print the namespace's change events as JSON lines until Ctrl-C or SIGTERM

Options of the client commands:
  --address HOST:PORT           server address (env TIERCACHE_ADDRESS; default 127.0.0.1:50051)
  --namespace NAME              namespace (default "default")
  --token TOKEN                 access token (prefer the env TIERCACHE_TOKEN: a flag shows in ps)
  --tls-ca FILE                 CA of the server's certificate; turns TLS on
  --tls-cert FILE --tls-key FILE  client certificate and key, for mutual TLS
  --timeout MS                  deadline of each call (default 5000)
  -h, --help                    this text
  --version                     the version

-h and --help print this text as the first word or right after the command (tiercache set --help);
elsewhere -h is an argument (tiercache set k -h stores "-h"), and after "--" every word is one
(tiercache set k -- --ttl).

Exit codes: 0 done; 1 miss (get, delete) or not SERVING (health);
2 failure (the gRPC status name and details on stderr) or a bad command line;
3 watch only: the server ended the stream (it shut down), as opposed to Ctrl-C or SIGTERM (0).`;

/** Exit code of `watch` when the server ends the stream (a server shutting down ends Watch with OK). */
export const EXIT_STREAM_CLOSED = 3;

/** The verbs handled here, besides `serve`. */
export const CLIENT_VERBS: ReadonlySet<string> = new Set(["get", "set", "delete", "invalidate-tags", "stats", "health", "watch"]);


const json = (value: unknown) => JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v));

function expectArgs(command: ClientCommand, names: readonly string[]): string[] {
  if (command.args.length !== names.length) {
    throw new UsageError(`${command.verb} takes ${names.length === 0 ? "no arguments" : names.join(" ")}, got ${command.args.length} argument(s)`);
  }
  return [...command.args];
}

async function runVerb(command: ClientCommand, io: CliIo): Promise<number> {
  const { verb, connection } = command;
  if (verb === "health") {
    if (command.args.length > 1) throw new UsageError("health takes at most one SERVICE");
    const status = await checkHealth(connection, command.args[0] ?? "");
    io.stdout(`${status}\n`);
    return status === "SERVING" ? 0 : 1;
  }
  if (verb === "watch") {
    expectArgs(command, []);
    const controller = new AbortController();
    const unlisten = io.onInterrupt(() => controller.abort());
    let end: "interrupted" | "closed";
    try {
      end = await watchEvents(connection, (line) => io.stdout(`${json(line)}\n`), controller.signal);
    } finally {
      unlisten();
    }
    if (end === "interrupted") return 0;
    io.stderr("tiercache: the server closed the stream (it is shutting down)\n");
    return EXIT_STREAM_CLOSED;
  }
  const client = cacheClient(connection);
  try {
    switch (verb) {
      case "get": {
        const [key] = expectArgs(command, ["KEY"]);
        const entry = await client.getEntry<StoredBytes>(key!);
        const text = entry === undefined ? undefined : printable(entry.value);
        if (text === undefined) return 1;
        io.stdout(`${text}\n`);
        return 0;
      }
      case "set": {
        const [key, value] = expectArgs(command, ["KEY", "VALUE"]);
        const { degraded } = await client.set(key!, parseValue(value!), { ...(command.ttlMs !== undefined && { ttl: command.ttlMs }), ...(command.tags !== undefined && { tags: command.tags }) });
        if (degraded) io.stderr("tiercache: warning: stored in the server's memory only (degraded write: its durable tier is unavailable)\n");
        return 0;
      }
      case "invalidate-tags": {
        if (command.args.length === 0) throw new UsageError("invalidate-tags needs at least one TAG");
        // Commas separate tags here as in `set --tags`, so that what one writes the other can name.
        await client.invalidateTags(command.args.flatMap((arg) => arg.split(",")));
        return 0;
      }
      case "delete": {
        const [key] = expectArgs(command, ["KEY"]);
        return (await client.delete(key!)) ? 0 : 1;
      }
      case "stats": {
        expectArgs(command, []);
        io.stdout(`${json(await client.statsReport(connection.namespace === undefined ? undefined : { namespace: connection.namespace }))}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(verb)}`);
    }
  } finally {
    client.close();
  }
}

/**
 * Runs a `tiercache` client command (`get`, `set`, `delete`, `stats`,
 * `health`, `watch`, `--help`, `--version`); resolves with the exit code.
 */
export async function clientMain(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: CliIo, version: string): Promise<number> {
  const first = argv[0];
  if (first === "--version" || first === "-V") {
    io.stdout(`${version}\n`);
    return 0;
  }
  if (first === undefined) {
    io.stderr(`${USAGE}\n`);
    return 2;
  }
  if (first === "-h" || first === "--help" || first === "help") {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  try {
    const command = parseClientCommand(argv, env);
    if (command.help) {
      io.stdout(`${USAGE}\n`);
      return 0;
    }
    return await runVerb(command, io);
  } catch (err) {
    if (err instanceof UsageError || err instanceof TypeError) {
      io.stderr(`tiercache: ${err.message}; try "tiercache --help"\n`);
      return 2;
    }
    if (err instanceof RpcError) {
      io.stderr(`${statusName(err.code)}: ${err.details}\n`);
      return 2;
    }
    const code = typeof err === "object" && err !== null && typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : undefined;
    const details = typeof err === "object" && err !== null && typeof (err as { details?: unknown }).details === "string" ? (err as { details: string }).details : undefined;
    // Only a gRPC failure gets a status name; a local one (a file, the system) says what it is.
    if (code === undefined || details === undefined) io.stderr(`tiercache: ${err instanceof Error ? err.message : String(err)}\n`);
    else io.stderr(`${statusName(code)}: ${details}\n`);
    return 2;
  }
}

/** The process's own streams and signals. */
export const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  onInterrupt(stop) {
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    return () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
    };
  },
};
