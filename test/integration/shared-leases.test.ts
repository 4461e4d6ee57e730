import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheClient, RpcError, Status } from "../../client/index.js";
import { CacheEngine } from "../../server/engine/cache-engine.js";
import { RedisTier } from "../../server/tiers/redis-tier.js";
import { fakeClock, type FakeClock } from "../helpers/fake-clock.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";
import { expectOneEagerRefresh } from "../helpers/eager-refresh.js";
import { engineWith } from "../helpers/test-engine.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("stampede protection across instances: leases in Redis", () => {
  let redis: TestRedis;
  let one: TestServer;
  let two: TestServer;
  let n = 0;
  const ns = () => `lease${++n}`;
  const clock = fakeClock(Date.now());

  beforeAll(async () => {
    redis = await startTestRedis();
    one = await startTestServer({ storage: "redis", redisUrl: redis.url }, { clock: clock.now });
    two = await startTestServer({ storage: "redis", redisUrl: redis.url }, { clock: clock.now });
  });
  afterAll(async () => {
    await one?.dispose();
    await two?.dispose();
    await redis?.stop();
  });

  const clientsOf = (namespace: string, perInstance: number, localTier = false) => [
    ...Array.from({ length: perInstance }, () => one.newClient({ namespace, localTier })),
    ...Array.from({ length: perInstance }, () => two.newClient({ namespace, localTier })),
  ];

  it("120 concurrent wraps of one key from clients of two instances run a slow loader once", async () => {
    const namespace = ns();
    const clients = clientsOf(namespace, 3);
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(300);
      return { computed: calls };
    };
    const results = await Promise.all(Array.from({ length: 120 }, (_, i) => clients[i % clients.length]!.wrap("hot", loader, { ttl: 60_000 })));
    expect(calls).toBe(1);
    expect(results.every((r) => r.computed === 1)).toBe(true);
  });

  it("hands the lease to another instance's caller when the holder's loader fails", async () => {
    const namespace = ns();
    const [a, b] = [one.newClient({ namespace }), two.newClient({ namespace })];
    const failing = a.wrap("k", async () => {
      await sleep(200);
      throw new Error("source down");
    }, { ttl: 60_000, leaseMs: 60_000 });
    await sleep(50);
    let bCalls = 0;
    const fromB = b.wrap("k", async () => `b${++bCalls}`, { ttl: 60_000, leaseWaitMs: 5_000 });
    await expect(failing).rejects.toThrow("source down");
    expect(await fromB).toBe("b1");
  });

  it("eager refresh runs once across clients of both instances", async () => {
    const namespace = ns();
    const clients = clientsOf(namespace, 3);
    await expectOneEagerRefresh(clients, { ttl: 10_000, eagerRefresh: 0.5 }, () => clock.advance(6_000), 100);
    expect(await clients[5]!.get("k")).toBe("v2");
  });

  it("a holder that skips wakes every waiting client of both instances to compute at once, not one after another", async () => {
    const namespace = ns();
    const clients = clientsOf(namespace, 3);
    let running = 0;
    let mostAtOnce = 0;
    let calls = 0;
    const loader = async (ctx: { skip(): void }) => {
      calls++;
      mostAtOnce = Math.max(mostAtOnce, ++running);
      await sleep(300);
      running--;
      ctx.skip();
      return null;
    };
    const results = await Promise.all(clients.map((c) => c.wrap("missing", loader, { ttl: 60_000, leaseWaitMs: 30_000 })));
    expect(results.every((r) => r === null)).toBe(true);
    expect(calls).toBe(6);
    // Before: each waiter took the given-back lease in turn, so the loader never ran twice at once (6 runs in a row).
    // Now the 5 waiters all start when the first holder gives the lease back (at least 3 at once, with slack for a slow wake-up).
    expect(mostAtOnce).toBeGreaterThanOrEqual(3);
  });

  it("fences a lease holder's write: refused once its lease lapsed and another caller holds it", async () => {
    const namespace = ns();
    const raw = one.client;
    const a = await rawLease(one, namespace, "k", 50);
    expect(a).not.toBe("");
    await sleep(120);
    const b = await rawLease(two, namespace, "k", 60_000);
    expect(b).not.toBe("");
    const late = setWithLease(one, namespace, "k", "from lapsed holder", a);
    await expect(late).rejects.toSatisfy((err: unknown) => RpcError.is(err, Status.FAILED_PRECONDITION));
    await setWithLease(two, namespace, "k", "from holder", b);
    expect(await raw.get("k", { namespace })).toBe("from holder");
  });
});

/** A GetOrLease through the raw RPC client of a test server's CacheClient-free channel: the lease token ("" when none). */
async function rawLease(server: TestServer, namespace: string, key: string, leaseMs: number): Promise<string> {
  const { createClient } = await import("../../core/grpc-adapter.js");
  const { CacheService } = await import("../../gen/tiercache/v1/cache_pb.js");
  const { credentials } = await import("@grpc/grpc-js");
  const rpc = createClient(CacheService, server.server.address, credentials.createInsecure());
  try {
    return (await rpc.getOrLease({ namespace, key, leaseMs, waitMs: 0 })).leaseToken;
  } finally {
    rpc.close();
  }
}

async function setWithLease(server: TestServer, namespace: string, key: string, value: string, leaseToken: string): Promise<void> {
  const { createClient } = await import("../../core/grpc-adapter.js");
  const { CacheService } = await import("../../gen/tiercache/v1/cache_pb.js");
  const { credentials } = await import("@grpc/grpc-js");
  const rpc = createClient(CacheService, server.server.address, credentials.createInsecure());
  try {
    await rpc.set({ namespace, key, value: new TextEncoder().encode(JSON.stringify(value)), contentType: "application/json", leaseToken });
  } finally {
    rpc.close();
  }
}

describe("eager refresh across instances before the refresh's change reached the other instance", () => {
  let redis: TestRedis;
  const tiers: RedisTier[] = [];
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterAll(async () => {
    for (const tier of tiers) await tier.close();
    await redis?.stop();
  });

  /** An engine over the shared Redis with no invalidation channel: it never learns of the other's writes, as during pub/sub delay. */
  async function engineOver(clock: FakeClock): Promise<CacheEngine> {
    const tier = await RedisTier.connect({ url: redis.url, keyPrefix: "eager", clock: clock.now });
    tiers.push(tier);
    return engineWith(clock, tier);
  }

  it("an instance whose memory copy is older than the stored value gets no lease, and is given the newer value", async () => {
    const clock = fakeClock(Date.now());
    const [a, b] = [await engineOver(clock), await engineOver(clock)];
    const bytes = (s: string) => new TextEncoder().encode(s);
    await a.set("ns", { key: "k", value: bytes("v1"), contentType: "", ttlMs: 2_000 });
    expect(new TextDecoder().decode((await b.get("ns", "k"))!.value)).toBe("v1"); // both hold v1 in memory
    clock.advance(1_200);
    const first = await b.getOrLease("ns", "k", 5_000, 0, undefined, false, 1_000);
    expect(first.leaseToken).toBeDefined();
    await b.set("ns", { key: "k", value: bytes("v2"), contentType: "", ttlMs: 2_000, leaseToken: first.leaseToken! });
    clock.advance(10);
    const second = await a.getOrLease("ns", "k", 5_000, 0, undefined, false, 1_000);
    expect(second.leaseToken).toBeUndefined(); // the window's refresh already happened, on B
    expect(new TextDecoder().decode(second.found!.value)).toBe("v2");
    expect(new TextDecoder().decode((await a.get("ns", "k"))!.value)).toBe("v2");
    clock.advance(1_000); // v2 is due now: one refresh in its window again
    expect((await a.getOrLease("ns", "k", 5_000, 0, undefined, false, 1_000)).leaseToken).toBeDefined();
  });

  it("callers of one instance waiting for another instance's holder wait, instead of spinning through Redis", async () => {
    const clock = fakeClock(Date.now());
    const [a, b] = [await engineOver(clock), await engineOver(clock)];
    const tierOfB = tiers.at(-1)!;
    expect((await a.getOrLease("spin", "k", 60_000, 0)).leaseToken).toBeDefined();
    const before = tierOfB.stats().calls;
    const waits = await Promise.all(Array.from({ length: 5 }, () => b.getOrLease("spin", "k", 60_000, 400)));
    expect(waits.every((w) => w.leaseToken === undefined && w.found === undefined)).toBe(true);
    // Each waiter reads, tries the lease, and waits (a few Redis calls each). Before, a refused try woke the others,
    // who tried again and woke the rest: hundreds of calls in 400 ms.
    expect(tierOfB.stats().calls - before).toBeLessThan(60);
  });
});
