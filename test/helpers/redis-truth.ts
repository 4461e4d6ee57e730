import { Socket } from "node:net";
import { Redis } from "ioredis";
import { ValueCodec } from "../../core/codec.js";
import { redisKey } from "../../server/tiers/redis-keys.js";

/** A value as the checks compare it: the client's decoded value, or null when the key holds none. */
export type Observed = unknown;

/** A value Redis held from `at` (ms since the epoch, by Redis's clock: the same machine's). */
export interface TruthEntry {
  readonly value: Observed;
  readonly at: number;
}

const codec = new ValueCodec();

/** Decodes what the TypeScript client stored (a JSON value in an envelope), or null. */
function decode(envelope: Buffer | null): Observed {
  if (envelope === null) return null;
  const { value } = codec.decode(envelope);
  return JSON.parse(new TextDecoder().decode(value)) as unknown;
}

const ESCAPES: Record<string, number> = { n: 10, r: 13, t: 9, a: 7, b: 8, '"': 34, "\\": 92 };

/** The arguments of a MONITOR line (`1.5 [0 127.0.0.1:1] "SET" "k" "\x00v"`), unescaped to bytes. */
export function parseMonitorLine(line: string): { at: number; args: Buffer[] } | undefined {
  const space = line.indexOf(" ");
  const open = line.indexOf('] "');
  if (space < 0 || open < 0) return undefined;
  const at = Number(line.slice(0, space)) * 1_000;
  const args: Buffer[] = [];
  let bytes: number[] = [];
  let inside = false;
  for (let i = open + 2; i < line.length; i++) {
    const c = line[i]!;
    if (!inside) {
      if (c === '"') inside = true;
      continue;
    }
    if (c === '"') {
      args.push(Buffer.from(bytes));
      bytes = [];
      inside = false;
    } else if (c === "\\") {
      const next = line[++i]!;
      if (next === "x") {
        bytes.push(parseInt(line.slice(i + 1, i + 3), 16));
        i += 2;
      } else bytes.push(ESCAPES[next] ?? next.charCodeAt(0));
    } else bytes.push(c.charCodeAt(0));
  }
  return Number.isFinite(at) ? { at, args } : undefined;
}

/**
 * The ground truth of a coherence test: Redis's own log of what it executed
 * (MONITOR, on a raw connection), reduced to the values a set of keys took
 * and when Redis applied each (its timestamp, exact: a write buffered while
 * Redis was paused shows at the moment it was applied after SIGCONT, and
 * values overwritten a microsecond later are not missed). SET and MSET give
 * values, UNLINK/DEL remove them; MULTI/EXEC and the touch script show their
 * inner commands. After a restart it reconnects and records what Redis
 * then holds (the append-only file's view), at the time it read it.
 */
export class RedisTruth {
  readonly #url: URL;
  readonly #reader: Redis;
  readonly #keys: readonly string[];
  readonly #ids: string[];
  readonly #keyOf: Map<string, string>;
  readonly #timelines = new Map<string, TruthEntry[]>();
  #socket: Socket | undefined;
  #running = true;
  #commands = 0;

  private constructor(url: string, keyPrefix: string, namespace: string, keys: readonly string[]) {
    this.#url = new URL(url);
    this.#reader = new Redis(url, { maxRetriesPerRequest: null, enableOfflineQueue: true, retryStrategy: () => 50, lazyConnect: true });
    this.#reader.on("error", () => {});
    this.#keys = keys;
    this.#ids = keys.map((key) => redisKey(keyPrefix, namespace, key));
    this.#keyOf = new Map(this.#ids.map((id, i) => [id, keys[i]!]));
    for (const key of keys) this.#timelines.set(key, []);
  }

  /** Starts following `keys` of `namespace`; resolves once MONITOR runs and their current values are known. */
  static async start(url: string, keys: readonly string[], options: { keyPrefix?: string; namespace?: string } = {}): Promise<RedisTruth> {
    const truth = new RedisTruth(url, options.keyPrefix ?? "tiercache", options.namespace ?? "default", keys);
    await truth.#reader.connect();
    await truth.#monitor();
    return truth;
  }

  #record(key: string, value: Observed, at: number): void {
    const timeline = this.#timelines.get(key)!;
    const last = timeline[timeline.length - 1];
    if (last && JSON.stringify(last.value) === JSON.stringify(value)) return;
    timeline.push({ value, at: Math.max(at, last?.at ?? 0) });
  }

  /** Opens a MONITOR connection, then reads the keys (so nothing is missed in between); reconnects when it drops. */
  #monitor(): Promise<void> {
    return new Promise<void>((resolve) => {
      const socket = new Socket();
      this.#socket = socket;
      let pending = "";
      let ready = false;
      socket.setEncoding("latin1");
      socket.on("data", (chunk: string) => {
        pending += chunk;
        let end: number;
        while ((end = pending.indexOf("\r\n")) >= 0) {
          const line = pending.slice(0, end);
          pending = pending.slice(end + 2);
          if (!ready && line === "+OK") {
            ready = true;
            void this.#snapshot().then(resolve);
          } else if (line.startsWith("+")) this.#onCommand(line.slice(1));
        }
      });
      socket.on("error", () => {});
      socket.on("close", () => {
        if (!this.#running) return;
        setTimeout(() => void this.#monitor().then(resolve), 50);
      });
      socket.connect(Number(this.#url.port || 6379), this.#url.hostname, () => socket.write("MONITOR\r\n"));
    });
  }

  async #snapshot(): Promise<void> {
    const values = await this.#reader.mgetBuffer(...this.#ids);
    const at = Date.now();
    this.#keys.forEach((key, i) => this.#record(key, decode(values[i] ?? null), at));
  }

  #onCommand(line: string): void {
    const name = /\] "([A-Za-z]+)"/.exec(line)?.[1]?.toUpperCase();
    if (name !== "SET" && name !== "MSET" && name !== "UNLINK" && name !== "DEL") return;
    const parsed = parseMonitorLine(line);
    if (!parsed) return;
    this.#commands++;
    const [, ...rest] = parsed.args;
    if (name === "SET" || name === "MSET") {
      for (let i = 0; i + 1 < (name === "SET" ? 2 : rest.length); i += 2) {
        const key = this.#keyOf.get(rest[i]!.toString("latin1"));
        if (key !== undefined) this.#record(key, decode(rest[i + 1]!), parsed.at);
      }
      return;
    }
    for (const id of rest) {
      const key = this.#keyOf.get(id.toString("latin1"));
      if (key !== undefined) this.#record(key, null, parsed.at);
    }
  }

  /** SET, MSET, UNLINK and DEL commands seen so far. */
  get commands(): number {
    return this.#commands;
  }

  /** The values `key` took, in order. */
  timeline(key: string): readonly TruthEntry[] {
    return this.#timelines.get(key) ?? [];
  }

  /** Reads the keys now, straight from Redis. */
  async read(): Promise<Map<string, Observed>> {
    const values = await this.#reader.mgetBuffer(...this.#ids);
    return new Map(this.#keys.map((key, i) => [key, decode(values[i] ?? null)]));
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#socket?.destroy();
    this.#reader.disconnect();
  }
}
