import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../server/logger.js";
import { createRedisClient, type RedisClient } from "../../server/tiers/redis-connection.js";
import { freePort, startTestRedis, type TestRedis, type TestRedisOptions } from "./redis-server.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

/** A fault the two-instance conformance deployment can suffer; `ms` is how long it lasts, in real time. */
export type Fault =
  /** Redis stopped (SIGSTOP): it keeps its connections and answers nothing; SIGCONT after `ms`. */
  | { readonly kind: "pauseRedis"; readonly ms: number }
  /** Redis killed (SIGKILL) and, `ms` later, started again on its port with its data (append-only file, fsync always). */
  | { readonly kind: "killRedis"; readonly ms: number }
  /** One instance's pub/sub connection reset (RST), and its reconnections refused for `ms`. */
  | { readonly kind: "cutSubscription"; readonly instance: number; readonly ms: number };

/** The kinds of {@link Fault}. */
export type FaultKind = Fault["kind"];

/** Ends a fault; resolves once Redis answers again (or the instance may reconnect). */
export type Heal = () => Promise<void>;

/**
 * The Redis of the two-instance deployment, with what faults need: it keeps
 * acknowledged writes through SIGKILL (`appendonly yes`, `appendfsync
 * always`, as test/faults does) and restarts on the same port and directory;
 * each instance subscribes to the invalidation channel through a TCP proxy
 * of its own, so that one instance's subscription can be cut alone.
 */
export class FaultableRedis {
  readonly #options: TestRedisOptions;
  readonly #dir: string;
  readonly #proxies: TcpProxy[];
  #redis: TestRedis;

  private constructor(redis: TestRedis, options: TestRedisOptions, dir: string, proxies: TcpProxy[]) {
    this.#redis = redis;
    this.#options = options;
    this.#dir = dir;
    this.#proxies = proxies;
  }

  /** Starts Redis on a free port in a temporary directory, and one subscription proxy per instance. */
  static async start(instances: number): Promise<FaultableRedis> {
    const dir = mkdtempSync(join(tmpdir(), "tiercache-conformance-redis-"));
    const options = { port: await freePort(), dir, args: ["--appendonly", "yes", "--appendfsync", "always"] };
    const redis = await startTestRedis(options);
    const proxies: TcpProxy[] = [];
    try {
      for (let i = 0; i < instances; i++) proxies.push(await startTcpProxy(redis));
    } catch (err) {
      for (const proxy of proxies) await proxy.close();
      await redis.stop(true);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return new FaultableRedis(redis, options, dir, proxies);
  }

  /** The URL of the data connections (straight to Redis). */
  get url(): string {
    return this.#redis.url;
  }

  /** A client, not yet connected, for instance `i`'s invalidation subscription, through its proxy. */
  subscriber(i: number): RedisClient {
    const proxy = this.#proxies[i]!;
    return createRedisClient({ target: { kind: "standalone", url: `redis://${proxy.host}:${proxy.port}` }, tls: false, connectTimeoutMs: 2_000, logger: silentLogger });
  }

  /**
   * Holds back what instance `i`'s subscription receives (a slow delivery of
   * invalidations; the connection stays open) until the returned function is
   * called. Keep it well under the instances' silence bound (two heartbeats).
   */
  holdSubscription(i: number): () => void {
    const proxy = this.#proxies[i]!;
    proxy.pause();
    return () => proxy.resume();
  }

  /** Puts `fault` on; resolves, once it is on, with what ends it. */
  async begin(fault: Fault): Promise<Heal> {
    switch (fault.kind) {
      case "pauseRedis": {
        const redis = this.#redis;
        redis.pause();
        return async () => redis.resume();
      }
      case "killRedis":
        await this.#redis.stop(true);
        return async () => {
          this.#redis = await startTestRedis(this.#options);
        };
      case "cutSubscription": {
        const proxy = this.#proxies[fault.instance % this.#proxies.length]!;
        proxy.reset();
        await proxy.refuse();
        return () => proxy.accept();
      }
    }
  }

  /** Stops the proxies and Redis, and removes its directory. */
  async stop(): Promise<void> {
    for (const proxy of this.#proxies) await proxy.close();
    await this.#redis.stop(true);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
