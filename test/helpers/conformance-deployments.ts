import { jsonSerializer, RpcError, Status, type CacheClient } from "../../client/index.js";
import { resolveNamespace } from "../../core/key-rules.js";
import { FaultableRedis, type Fault, type Heal } from "./conformance-faults.js";
import { fakeClock, type FakeClock } from "./fake-clock.js";
import { startTestRedis, type TestRedis } from "./redis-server.js";
import { startTestServer, type TestServer } from "./test-server.js";

/** The deployments every conformance run is checked on. */
export type DeploymentKind = "memory" | "lmdb" | "redis" | "two-instances";

/** A client commands are sent to. */
export interface ClientUnderTest {
  readonly client: CacheClient;
  /** The namespace its calls use when they name none ("" = the default one). */
  readonly namespace: string;
  /** Short name for failure messages, e.g. "c1 (instance 2, local tier, namespace \"\")". */
  readonly label: string;
}

/** What a server instance holds for a key, as GetOrLease (and so wrap) sees it: stale values too. */
export interface InstanceView {
  readonly value: unknown;
  readonly stale: boolean;
  /** Ms until the value goes stale (0 = never, or stale already), as the instance's engine says. */
  readonly freshRemainingMs: number;
  /** The stored expiry, the end of grace (ms since the epoch, 0 = never): what an eager refresh's shared lease checks. */
  readonly expiresAt: number;
}

/** A running deployment on a fake clock shared by its servers, clients and the model. */
export interface Deployment {
  readonly kind: DeploymentKind;
  readonly clock: FakeClock;
  /** Two clients: the first uses namespace "default" for calls that name none, the second "". */
  readonly clients: readonly ClientUnderTest[];
  /**
   * Reads may lag the model by up to the coherence bound: several server
   * instances, clients with local tiers. Otherwise every result is exact.
   */
  readonly eventual: boolean;
  /** The servers' max-key-bytes. */
  readonly maxKeyBytes: number;
  /**
   * Where the deployment has several instances: holds back the invalidations
   * instance `i` receives from the others until the returned function is called.
   */
  readonly holdInvalidations: ((instance: number) => () => void) | undefined;
  /** Puts a fault on, where the deployment can suffer faults (two instances); resolves with what ends it. */
  readonly injectFault: ((fault: Fault) => Promise<Heal>) | undefined;
  /**
   * What the server instance that `clients[client]` calls holds for `key`
   * (undefined: nothing), stale values included, read from its engine as a
   * GetOrLease would (a read through to Redis is promoted into its memory
   * tier, as a Get's is); rejects as that read does.
   */
  instanceView(client: number, namespace: string, key: string): Promise<InstanceView | undefined>;
  /** Two more clients of one server instance, without local tiers (lease tests). */
  sameInstanceClients(): [CacheClient, CacheClient];
  /**
   * Empties `namespaces` on every instance (where faults may have been, retrying while it recovers); where
   * clients have local tiers, replaces them with new clients.
   */
  reset(namespaces: readonly string[]): Promise<void>;
  dispose(): Promise<void>;
}

const REDIS_PREFIX = "conformance";

/**
 * Over a durable tier the server's memory tier holds one entry per namespace
 * (a few with two instances, whose memory copies are what coherence is
 * about), so that reads often fall through to LMDB or Redis: an eviction must
 * never change what a read returns there.
 */
const SMALL_MEMORY = { memoryMaxEntries: 1 } as const;
const FEW_IN_MEMORY = { memoryMaxEntries: 4 } as const;

async function singleInstance(kind: Exclude<DeploymentKind, "two-instances">, clock: FakeClock): Promise<{ servers: TestServer[]; redis?: TestRedis }> {
  if (kind === "memory") return { servers: [await startTestServer({ storage: "memory" }, { clock: clock.now })] };
  if (kind === "lmdb") return { servers: [await startTestServer({ storage: "lmdb", ...SMALL_MEMORY }, { clock: clock.now })] };
  const redis = await startTestRedis();
  try {
    return { servers: [await startTestServer({ storage: "redis", redisUrl: redis.url, redisKeyPrefix: REDIS_PREFIX, ...SMALL_MEMORY }, { clock: clock.now })], redis };
  } catch (err) {
    await redis.stop();
    throw err;
  }
}

async function twoInstances(clock: FakeClock): Promise<{ servers: TestServer[]; redis: FaultableRedis }> {
  const redis = await FaultableRedis.start(2);
  const servers: TestServer[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const config = { storage: "redis", redisUrl: redis.url, redisKeyPrefix: REDIS_PREFIX, ...FEW_IN_MEMORY } as const;
      servers.push(await startTestServer(config, { clock: clock.now, invalidationSubscriber: redis.subscriber(i) }));
    }
    return { servers, redis };
  } catch (err) {
    for (const server of servers) await server.dispose();
    await redis.stop();
    throw err;
  }
}

/** Longest wait for a namespace to be cleared while the deployment recovers from a fault. */
const RECOVERY_TIMEOUT_MS = 20_000;

/** Runs `call`, retrying while it answers UNAVAILABLE or DEADLINE_EXCEEDED (the deployment recovering from a fault). */
async function recovering<T>(call: () => Promise<T>): Promise<T> {
  const started = Date.now();
  for (;;) {
    try {
      return await call();
    } catch (err) {
      const transient = RpcError.is(err, Status.UNAVAILABLE) || RpcError.is(err, Status.DEADLINE_EXCEEDED);
      if (!transient || Date.now() - started > RECOVERY_TIMEOUT_MS) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** A key no run uses, written and deleted by `awaitPeersHeard`. */
const PEER_BARRIER_KEY = "conformance: every peer heard";

/**
 * Waits until each instance has handled every invalidation the others
 * published before (a clear through another instance, say, which would
 * otherwise reach it during the next run and drop what that run wrote):
 * the instance holds a key in its memory tier, another deletes it, and once
 * the instance no longer serves it, the earlier messages of that channel
 * have been handled too.
 */
async function awaitPeersHeard(servers: readonly TestServer[]): Promise<void> {
  for (const [i, server] of servers.entries()) {
    const peer = servers[(i + 1) % servers.length]!;
    await recovering(() => server.client.set(PEER_BARRIER_KEY, true));
    await recovering(() => peer.client.delete(PEER_BARRIER_KEY));
    const started = Date.now();
    const held = () => server.server.engine.get(resolveNamespace(""), PEER_BARRIER_KEY, undefined, true).then((found) => found !== undefined, () => true);
    while (await held()) {
      if (Date.now() - started > RECOVERY_TIMEOUT_MS) throw new Error(`instance ${i + 1} did not hear a delete through instance ${((i + 1) % servers.length) + 1} within ${RECOVERY_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

/**
 * Starts a deployment: "memory" (storage memory), "lmdb" (storage local in a
 * temporary directory), "redis" (its own redis-server), or "two-instances"
 * (two servers over one redis-server, one client with a local tier on each,
 * covering every namespace; Redis can be paused, killed and restarted, and
 * each instance's pub/sub connection cut: see FaultableRedis). Over LMDB and
 * Redis the memory tier is kept small (see SMALL_MEMORY).
 */
export async function startDeployment(kind: DeploymentKind): Promise<Deployment> {
  const clock = fakeClock(Date.now());
  const { servers, redis } = kind === "two-instances" ? await twoInstances(clock) : await singleInstance(kind, clock);
  const faultable = redis instanceof FaultableRedis ? redis : undefined;
  const local = kind === "two-instances";
  const connect = (i: number): ClientUnderTest => {
    const server = servers[i % servers.length]!;
    const namespace = i === 0 ? "default" : "";
    const client = server.newClient({ namespace, ...(local && { localTier: { clock: clock.now } }) });
    const where = servers.length > 1 ? `instance ${(i % servers.length) + 1}, ` : "";
    return { client, namespace, label: `c${i} (${where}${local ? "local tier, " : ""}namespace ${JSON.stringify(namespace)})` };
  };
  let clients = [connect(0), connect(1)];
  return {
    kind,
    clock,
    get clients() {
      return clients;
    },
    eventual: local,
    maxKeyBytes: servers[0]!.config.maxKeyBytes,
    injectFault: faultable && ((fault) => faultable.begin(fault)),
    holdInvalidations: faultable && ((instance) => faultable.holdSubscription(instance)),
    async instanceView(client, namespace, key) {
      const found = await servers[client % servers.length]!.server.engine.get(resolveNamespace(namespace), key, undefined, true);
      return found && { value: jsonSerializer.decode(found.value, found.contentType), stale: found.stale, freshRemainingMs: found.freshRemainingMs, expiresAt: found.expiresAt };
    },
    sameInstanceClients: () => [servers[0]!.newClient(), servers[0]!.newClient()],
    async reset(namespaces) {
      if (local) {
        // New clients: empty local tiers, and a run cannot inherit a watcher another run broke.
        for (const { client } of clients) client.close();
        clients = [connect(0), connect(1)];
      }
      for (const server of servers) {
        for (const namespace of namespaces) await (faultable ? recovering(() => server.client.clear({ namespace })) : server.client.clear({ namespace }));
      }
      if (servers.length > 1) await awaitPeersHeard(servers);
    },
    async dispose() {
      for (const server of servers) await server.dispose();
      await redis?.stop();
    },
  };
}
