import { CacheClient, RpcError, statusName } from "../../client/index.js";
import { RedisTruth, type Observed } from "./redis-truth.js";
import { analyzeStaleness, type ReadObservation, type StalenessReport, type WriteRecord } from "./staleness.js";

/** A server instance the run writes and reads through. */
export interface RunInstance {
  readonly name: string;
  readonly address: string;
}

/** Options of a {@link CoherenceRun}. */
export interface CoherenceRunOptions {
  /** The staleness bound checked, in ms. */
  readonly boundMs: number;
  /** How many keys are written and read. @default 24 */
  readonly keyCount?: number;
  /** Pause after each write of a writer, in ms. @default 10 */
  readonly writeGapMs?: number;
  /** Writers per instance, each with its own client. @default 2 */
  readonly writersPerInstance?: number;
  /** Pause after each read of a reader, in ms. @default 20 */
  readonly readGapMs?: number;
}

/** What a run found; `stalePastBound` includes the final check's mismatches. */
export interface CoherenceResult extends StalenessReport {
  /** Writes issued (each is checked: acknowledged or not, its key is read throughout). */
  readonly writes: number;
  readonly acknowledged: number;
  /** Writes that failed (UNAVAILABLE, DEADLINE_EXCEEDED…): their outcome is uncertain. */
  readonly uncertain: number;
  /** Failed writes by status. */
  readonly failures: Readonly<Record<string, number>>;
  /** Changes of a key's value seen in Redis. */
  readonly changesSeen: number;
  /** After the load stopped and the bound passed: reader/key pairs that still disagreed with Redis. */
  readonly finalMismatches: readonly string[];
  /** The summary line printed. */
  readonly summary: string;
}

interface Loop {
  readonly instance: string;
  stop: boolean;
  done: Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function outcomeOf(err: unknown): string {
  return err instanceof RpcError ? statusName(err.code) : err instanceof Error ? err.name : String(err);
}

/**
 * A mixed load with a staleness check (STYLE.md item 12's history check,
 * against Redis as the truth): per instance, writers (set, setMany,
 * delete, deleteMany, touch on a small set of hot keys, every write a unique
 * value) and two readers reading every hot key in a loop, one through a
 * plain client (the instance's memory tier) and one through a client with a
 * local tier. A {@link RedisTruth} follows what Redis executes. {@link finish} stops
 * the writers, lets the bound pass with the readers still reading, checks
 * every reader against Redis once more, and measures every read's staleness.
 */
export class CoherenceRun {
  readonly name: string;
  readonly keys: readonly string[];
  readonly writes: WriteRecord[] = [];
  readonly reads: ReadObservation[] = [];
  readonly #options: Required<CoherenceRunOptions>;
  readonly #truth: RedisTruth;
  readonly #clients: CacheClient[] = [];
  readonly #readers = new Map<string, CacheClient>();
  readonly #writers: Loop[] = [];
  readonly #readLoops: Loop[] = [];
  #counter = 0;

  private constructor(name: string, keys: readonly string[], truth: RedisTruth, options: Required<CoherenceRunOptions>) {
    this.name = name;
    this.keys = keys;
    this.#truth = truth;
    this.#options = options;
  }

  /** Writes every key once through the first instance, starts the truth poller, then the load on every instance. */
  static async start(name: string, redisUrl: string, instances: readonly RunInstance[], options: CoherenceRunOptions): Promise<CoherenceRun> {
    const resolved = { keyCount: 24, writeGapMs: 10, writersPerInstance: 2, readGapMs: 20, ...options };
    const keys = Array.from({ length: resolved.keyCount }, (_, i) => `hot-${i}`);
    const seed = new CacheClient({ address: instances[0]!.address });
    await seed.setMany(keys.map((key) => [key, `${key}:initial`] as const));
    seed.close();
    const truth = await RedisTruth.start(redisUrl, keys);
    const run = new CoherenceRun(name, keys, truth, resolved);
    for (const instance of instances) run.addInstance(instance);
    return run;
  }

  #client(address: string, localTier: boolean, timeoutMs: number): CacheClient {
    const client = new CacheClient({ address, localTier, timeoutMs, retryReads: false });
    this.#clients.push(client);
    return client;
  }

  /** Starts the writers and two readers (memory tier, client local tier) on `instance`. */
  addInstance(instance: RunInstance): void {
    for (let i = 0; i < this.#options.writersPerInstance; i++) {
      const writer = this.#client(instance.address, false, 2_500);
      this.#writers.push(this.#loop(instance.name, (loop) => this.#writeLoop(`${instance.name}${i}`, writer, loop)));
    }
    for (const [suffix, localTier] of [["memory", false], ["local", true]] as const) {
      const reader = `${instance.name}/${suffix}`;
      const client = this.#client(instance.address, localTier, 1_000);
      this.#readers.set(reader, client);
      this.#readLoops.push(this.#loop(instance.name, (loop) => this.#readLoop(reader, client, loop)));
    }
  }

  /** Stops reading through `instance` (it is gone); its writer keeps trying, and failing. */
  stopReading(instance: string): void {
    for (const loop of this.#readLoops) if (loop.instance === instance) loop.stop = true;
    for (const reader of [...this.#readers.keys()]) if (reader.startsWith(`${instance}/`)) this.#readers.delete(reader);
  }

  #loop(instance: string, body: (loop: Loop) => Promise<void>): Loop {
    const loop: Loop = { instance, stop: false, done: Promise.resolve() };
    loop.done = body(loop);
    return loop;
  }

  /** One write of the mix: what it does and what each key should hold if it takes effect. */
  #nextWrite(writer: string, client: CacheClient): { plan: Pick<WriteRecord, "op" | "keys" | "values">; call: () => Promise<unknown> } {
    const pick = () => this.keys[Math.floor(Math.random() * this.keys.length)]!;
    const value = (key: string) => `${key}:${writer}:${++this.#counter}`;
    const a = pick();
    let b = pick();
    if (b === a) b = this.keys[(this.keys.indexOf(a) + 1) % this.keys.length]!;
    const r = Math.random();
    if (r < 0.55) {
      const v = value(a);
      return { plan: { op: "set", keys: [a], values: [v] }, call: () => client.set(a, v) };
    }
    if (r < 0.65) {
      const [va, vb] = [value(a), value(b)];
      return { plan: { op: "setMany", keys: [a, b], values: [va, vb] }, call: () => client.setMany([[a, va], [b, vb]]) };
    }
    if (r < 0.8) return { plan: { op: "delete", keys: [a], values: [null] }, call: () => client.delete(a) };
    if (r < 0.85) return { plan: { op: "deleteMany", keys: [a, b], values: [null, null] }, call: () => client.deleteMany([a, b]) };
    return { plan: { op: "touch", keys: [a], values: undefined }, call: () => client.touch(a, { ttl: 600_000 }) };
  }

  async #writeLoop(writer: string, client: CacheClient, loop: Loop): Promise<void> {
    while (!loop.stop) {
      const { plan, call } = this.#nextWrite(writer, client);
      const record: WriteRecord = { writer, ...plan, start: Date.now(), end: 0, outcome: "" };
      try {
        await call();
        record.outcome = "OK";
      } catch (err) {
        record.outcome = outcomeOf(err);
      }
      record.end = Date.now();
      this.writes.push(record);
      await sleep(this.#options.writeGapMs);
    }
  }

  async #readLoop(reader: string, client: CacheClient, loop: Loop): Promise<void> {
    while (!loop.stop) {
      const start = Date.now();
      try {
        const found = await client.getMany<Observed>(this.keys);
        const end = Date.now();
        for (const key of this.keys) this.reads.push({ reader, key, value: found.has(key) ? found.get(key) : null, start, end });
      } catch {
        // unavailable right now: no observation
      }
      await sleep(this.#options.readGapMs);
    }
  }

  /** Successful writes so far. */
  get acknowledged(): number {
    return this.writes.filter((w) => w.outcome === "OK").length;
  }

  /**
   * Stops the writers, waits `settleMs` (at least the bound) with the readers
   * still reading, compares every reader with Redis once more, stops, and
   * prints and returns the summary.
   */
  async finish(settleMs: number): Promise<CoherenceResult> {
    for (const loop of this.#writers) loop.stop = true;
    await Promise.all(this.#writers.map((loop) => loop.done));
    await sleep(settleMs);
    const finalMismatches: string[] = [];
    const truth = await this.#truth.read();
    const finalStart = Date.now();
    for (const [reader, client] of this.#readers) {
      const found = await client.getMany<Observed>(this.keys).catch((err: unknown) => err as Error);
      if (found instanceof Error) {
        finalMismatches.push(`${reader}: read failed (${outcomeOf(found)})`);
        continue;
      }
      for (const key of this.keys) {
        const got = found.has(key) ? found.get(key) : null;
        if (JSON.stringify(got) !== JSON.stringify(truth.get(key))) {
          finalMismatches.push(`${reader}: ${key}=${JSON.stringify(got)}, Redis ${JSON.stringify(truth.get(key))} (${finalStart - this.#lastChange(key)} ms after it was seen)`);
        }
      }
    }
    for (const loop of this.#readLoops) loop.stop = true;
    await Promise.all(this.#readLoops.map((loop) => loop.done));
    await this.#truth.stop();
    for (const client of this.#clients) client.close();

    const report = analyzeStaleness((key) => this.#truth.timeline(key), this.reads, this.writes, this.#options.boundMs);
    const failures: Record<string, number> = {};
    for (const write of this.writes) if (write.outcome !== "OK") failures[write.outcome] = (failures[write.outcome] ?? 0) + 1;
    const acknowledged = this.acknowledged;
    const changesSeen = this.keys.reduce((sum, key) => sum + this.#truth.timeline(key).length - 1, 0);
    const stalePastBound = report.stalePastBound + finalMismatches.length;
    const summary =
      `coherence ${this.name}: writes checked ${this.writes.length} (acknowledged ${acknowledged}, uncertain ${this.writes.length - acknowledged} ${JSON.stringify(failures)}), ` +
      `changes seen in Redis ${changesSeen}, reads ${report.reads}, stale past the ${this.#options.boundMs} ms bound ${stalePastBound}, worst staleness ${report.worstMs} ms`;
    console.log(summary);
    if (process.env.COHERENCE_DEBUG) this.#explain([...report.examples, ...(report.worst ? [report.worst] : [])]);
    return {
      ...report,
      stalePastBound,
      examples: [...report.examples, ...finalMismatches.slice(0, 5)],
      writes: this.writes.length,
      acknowledged,
      uncertain: this.writes.length - acknowledged,
      failures,
      changesSeen,
      finalMismatches,
      summary,
    };
  }

  /** COHERENCE_DEBUG=1: prints, for each example, its key's Redis timeline and writes (ms from the key's first value). */
  #explain(examples: readonly string[]): void {
    for (const example of examples) {
      const key = /read (\S+)=/.exec(example)?.[1];
      if (!key) continue;
      const timeline = this.#truth.timeline(key);
      const t0 = timeline[0]?.at ?? 0;
      console.log(`${example}\n timeline: ${timeline.map((e) => `${Math.round(e.at - t0)}:${JSON.stringify(e.value)}`).join(" ")}`);
      for (const w of this.writes.filter((write) => write.keys.includes(key))) {
        console.log(`  ${w.writer} ${w.op} ${JSON.stringify(w.values)} ${w.start - t0}..${w.end - t0} ${w.outcome}`);
      }
    }
  }

  #lastChange(key: string): number {
    return this.#truth.timeline(key).at(-1)?.at ?? 0;
  }
}

/**
 * The bound the coherence fault tests check, in ms: two and a quarter
 * heartbeats of the invalidation channel (1 s by default), plus 750 ms for
 * delivery (pub/sub, the Watch stream, a loaded 2-core test machine).
 */
export const COHERENCE_BOUND_MS = 2_250 + 750;
