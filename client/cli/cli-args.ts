import { timeoutProblem } from "../../core/grpc-adapter.js";
import { RpcError, Status } from "../../core/rpc-error.js";
import { checkedNamespace } from "../argument-checks.js";

/** A command line the `tiercache` client verbs cannot run; printed with the usage hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Options every client verb takes. */
export interface ConnectionOptions {
  /** host:port of the server. */
  readonly address: string;
  /** Namespace of the call ("" = "default"). */
  readonly namespace: string | undefined;
  /** Access token, sent as `authorization: Bearer`. */
  readonly token: string | undefined;
  /** PEM files: the CA that signs the server's certificate, and the client's own certificate and key (mutual TLS). */
  readonly tls: { readonly ca?: string; readonly cert?: string; readonly key?: string } | undefined;
  /** Deadline of each call, in ms. */
  readonly timeoutMs: number;
}

/** One parsed client command line. */
export interface ClientCommand {
  readonly verb: string;
  /** `VERB --help` or `VERB -h` (right after the verb): print the usage and do nothing else. Elsewhere `-h` is an argument. */
  readonly help: boolean;
  readonly args: readonly string[];
  readonly ttlMs: number | undefined;
  /** `--tags a,b`: tags of the value `set` stores; undefined when not given. */
  readonly tags: readonly string[] | undefined;
  readonly connection: ConnectionOptions;
}

/** The address used when neither --address nor TIERCACHE_ADDRESS is given. */
export const DEFAULT_ADDRESS = "127.0.0.1:50051";

const VALUE_FLAGS = new Set(["--address", "--namespace", "--token", "--tls-ca", "--tls-cert", "--tls-key", "--ttl", "--tags", "--timeout"]);

/** HOST:PORT (an IPv6 host in brackets), or a grpc-js `unix:` path; grpc-js would dial port 443 for a bare host. */
function isHostPort(address: string): boolean {
  if (address.startsWith("unix:")) return address.length > "unix:".length;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(address);
  return match !== null && Number(match[2]) >= 1 && Number(match[2]) <= 65535;
}

const DECIMAL = /^\d+(\.\d+)?$/;

function nonNegativeMs(flag: string, text: string): number {
  if (!DECIMAL.test(text)) throw new UsageError(`invalid ${flag} ${JSON.stringify(text)}: expected a decimal number of ms, at least 0`);
  return Number(text);
}

/** --timeout: a decimal number of ms; one the SDK would refuse (0, over 2^31-1) is INVALID_ARGUMENT, as the SDK reports it. */
function timeoutMs(text: string): number {
  if (!DECIMAL.test(text) && !/^\d+(\.\d+)?e\d+$/i.test(text)) throw new UsageError(`invalid --timeout ${JSON.stringify(text)}: expected a decimal number of ms`);
  const ms = Number(text);
  const problem = timeoutProblem("--timeout", ms);
  if (problem !== undefined) throw new RpcError(Status.INVALID_ARGUMENT, problem);
  return ms;
}

/**
 * Parses `VERB [ARGS] [--flag value | --flag=value]…`; flags override the
 * TIERCACHE_ADDRESS and TIERCACHE_TOKEN environment variables.
 */
export function parseClientCommand(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ClientCommand {
  const [verb, ...rest] = argv;
  if (verb === undefined) throw new UsageError("no command given");
  const flags = new Map<string, string>();
  const args: string[] = [];
  let help = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === "--") {
      args.push(...rest.slice(i + 1));
      break;
    }
    if (i === 0 && (arg === "-h" || arg === "--help")) {
      help = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      args.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg : arg.slice(0, eq);
    if (!VALUE_FLAGS.has(name)) throw new UsageError(`unknown option ${name}`);
    const value = eq < 0 ? rest[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new UsageError(`${name} needs a value`);
    flags.set(name, value);
  }
  if (help) return { verb, help, args, ttlMs: undefined, tags: undefined, connection: { address: DEFAULT_ADDRESS, namespace: undefined, token: undefined, tls: undefined, timeoutMs: 5_000 } };
  const namespace = flags.get("--namespace");
  if (namespace !== undefined) checkedNamespace(namespace);
  const address = flags.get("--address") ?? (env["TIERCACHE_ADDRESS"] || DEFAULT_ADDRESS);
  const addressSource = flags.has("--address") ? "--address" : "TIERCACHE_ADDRESS";
  if (!isHostPort(address)) throw new UsageError(`invalid ${addressSource} ${JSON.stringify(address)}: expected HOST:PORT`);
  const ttl = flags.get("--ttl");
  const tags = flags.get("--tags");
  const timeout = flags.get("--timeout");
  const tlsCa = flags.get("--tls-ca");
  const tlsCert = flags.get("--tls-cert");
  const tlsKey = flags.get("--tls-key");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new UsageError("--tls-cert and --tls-key go together");
  const tls = tlsCa ?? tlsCert ?? tlsKey ? { ...(tlsCa !== undefined && { ca: tlsCa }), ...(tlsCert !== undefined && { cert: tlsCert }), ...(tlsKey !== undefined && { key: tlsKey }) } : undefined;
  return {
    verb,
    help,
    args,
    ttlMs: ttl === undefined ? undefined : nonNegativeMs("--ttl", ttl),
    tags: tags === undefined ? undefined : tags.split(","),
    connection: {
      address,
      namespace,
      token: flags.get("--token") ?? (env["TIERCACHE_TOKEN"] || undefined),
      tls,
      timeoutMs: timeout === undefined ? 5_000 : timeoutMs(timeout),
    },
  };
}
