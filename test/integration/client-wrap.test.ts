import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheClient, LoaderTimeoutError, UnserializableError, keyFromArguments } from "../../client/index.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { RpcError, Status } from "../../core/rpc-error.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("wrap, getOrSet, wrapMany and cached", () => {
  const clock = fakeClock(Date.now());
  let t: TestServer;
  let n = 0;
  const ns = () => `wrap${++n}`;

  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" }, { clock: clock.now });
  });
  afterAll(async () => {
    await t.dispose();
  });

  it.each([100, 1_000, 10_000])("runs the loader once for %i concurrent callers of one missing key", async (callers) => {
    const namespace = ns();
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(50);
      return { answer: 42 };
    };
    const results = await Promise.all(Array.from({ length: callers }, () => t.client.wrap("hot", loader, { namespace, ttl: 60_000 })));
    expect(calls).toBe(1);
    expect(results.every((r) => r.answer === 42)).toBe(true);
    await t.client.settled();
    expect(await t.client.get("hot", { namespace })).toEqual({ answer: 42 });
    console.log(`stampede: ${callers} concurrent callers -> ${calls} loader call(s)`);
  });

  it("refuses a loaded value the serializer cannot encode with UnserializableError in wrap as in wrapMany and set, caching nothing", async () => {
    const namespace = ns();
    const c = t.newClient();
    for (const bad of [() => 1, new Uint16Array([1, 2]), new Error("boom")]) {
      await expect(c.set("s", bad, { namespace })).rejects.toBeInstanceOf(UnserializableError);
      await expect(c.wrap("w", async () => bad, { namespace, ttl: 60_000 })).rejects.toBeInstanceOf(UnserializableError);
      await expect(c.wrapMany(["m"], async () => ({ m: bad }), { namespace, ttl: 60_000 })).rejects.toBeInstanceOf(UnserializableError);
    }
    await c.settled();
    expect(c.wrapStats().writeFailures).toBe(0);
    expect(await c.getMany(["s", "w", "m"], { namespace })).toEqual(new Map());
    // The key is not left leased: the next wrap loads at once.
    expect(await c.wrap("w", async () => "fine", { namespace, ttl: 60_000 })).toBe("fine");
  });

  it("lets one client compute a missing key while other clients wait for its value (server lease)", async () => {
    const namespace = ns();
    const clients = Array.from({ length: 5 }, () => t.newClient({ namespace }));
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(200);
      return "computed once";
    };
    const results = await Promise.all(clients.map((c) => c.wrap("shared", loader, { ttl: 60_000 })));
    expect(results).toEqual(Array(5).fill("computed once"));
    expect(calls).toBe(1);
  });

  it("hands the lease on when the holder's loader fails", async () => {
    const namespace = ns();
    const [a, b] = [t.newClient({ namespace }), t.newClient({ namespace })];
    const failing = a.wrap("k", async () => {
      await sleep(100);
      throw new Error("backend down");
    });
    await sleep(20);
    const second = b.wrap("k", async () => "from b", { ttl: 60_000 });
    await expect(failing).rejects.toThrow("backend down");
    expect(await second).toBe("from b");
  });

  it("gives the lease back when the holder cannot store its value, so others do not wait for it", async () => {
    const namespace = ns();
    const [a, b] = [t.newClient({ namespace }), t.newClient({ namespace })];
    const tooBig = await a.wrap("big", async () => "x".repeat(t.config.maxValueBytes + 10), { ttl: 60_000 });
    expect(tooBig.length).toBe(t.config.maxValueBytes + 10);
    const started = Date.now();
    expect(await b.wrap("big", async () => "small", { ttl: 60_000 })).toBe("small");
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it("closes the caller's entry source when the server fails a stream early", async () => {
    let closed = false;
    const entries = (function* () {
      try {
        yield ["", "empty key is invalid"] as const;
        for (let i = 0; i < 100_000; i++) yield [`k${i}`, "x".repeat(100)] as const;
      } finally {
        closed = true;
      }
    })();
    await expect(t.client.streamSet(entries, { namespace: ns(), batchSize: 1 })).rejects.toMatchObject({ code: 3 });
    for (let i = 0; i < 100 && !closed; i++) await sleep(10);
    expect(closed).toBe(true);
  });

  it("serves a stale value at once within grace and refreshes it once in the background", async () => {
    const namespace = ns();
    let version = 0;
    const loader = async () => `v${++version}`;
    expect(await t.client.wrap("page", loader, { namespace, ttl: 1_000, grace: 10_000 })).toBe("v1");
    await t.client.settled();
    clock.advance(1_500);
    expect(await t.client.get("page", { namespace })).toBeUndefined();
    const stale = await Promise.all(Array.from({ length: 20 }, () => t.client.wrap("page", loader, { namespace, ttl: 1_000, grace: 10_000 })));
    expect(stale.every((v) => v === "v1")).toBe(true);
    for (let i = 0; i < 50 && version < 2; i++) await sleep(10);
    await t.client.settled();
    expect(version).toBe(2);
    expect(await t.client.wrap("page", loader, { namespace, ttl: 1_000, grace: 10_000 })).toBe("v2");
  });

  it("keeps serving the stale value when the loader fails, until grace ends", async () => {
    const namespace = ns();
    await t.client.wrap("k", async () => "good", { namespace, ttl: 1_000, grace: 5_000 });
    await t.client.settled();
    clock.advance(2_000);
    const broken = async (): Promise<string> => {
      throw new Error("source down");
    };
    expect(await t.client.wrap("k", broken, { namespace, ttl: 1_000, grace: 5_000 })).toBe("good");
    await sleep(30);
    expect(await t.client.wrap("k", broken, { namespace, ttl: 1_000, grace: 5_000, staleWhileRevalidate: false })).toBe("good");
    clock.advance(5_000);
    await expect(t.client.wrap("k", broken, { namespace, ttl: 1_000, grace: 5_000 })).rejects.toThrow("source down");
  });

  it("applies soft and hard loader timeouts", async () => {
    const namespace = ns();
    await t.client.wrap("k", async () => "old", { namespace, ttl: 1_000, grace: 60_000 });
    await t.client.settled();
    clock.advance(1_500);
    const slow = async () => {
      await sleep(300);
      return "new";
    };
    const started = Date.now();
    expect(await t.client.wrap("k", slow, { namespace, ttl: 1_000, grace: 60_000, staleWhileRevalidate: false, softTimeout: 20 })).toBe("old");
    expect(Date.now() - started).toBeLessThan(280);
    await expect(t.client.wrap("missing", slow, { namespace, hardTimeout: 30 })).rejects.toBeInstanceOf(LoaderTimeoutError);
  });

  it("with staleWhileRevalidate off, lets one client refresh a stale key while the others wait for its value", async () => {
    const namespace = ns();
    const options = { ttl: 1_000, grace: 60_000, staleWhileRevalidate: false };
    await t.client.wrap("page", async () => "v1", { namespace, ...options });
    await t.client.settled();
    clock.advance(1_500);
    const clients = Array.from({ length: 5 }, () => t.newClient({ namespace }));
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(100);
      return "v2";
    };
    const results = await Promise.all(clients.map((c) => c.wrap("page", loader, options)));
    expect(calls).toBe(1);
    expect(results).toEqual(Array(5).fill("v2"));
  });

  it("with staleWhileRevalidate off, serves the stale value to every client once softTimeout passes, still with one loader run", async () => {
    const namespace = ns();
    const options = { ttl: 1_000, grace: 60_000, staleWhileRevalidate: false, softTimeout: 30 };
    await t.client.wrap("page", async () => "v1", { namespace, ...options });
    await t.client.settled();
    clock.advance(1_500);
    const clients = Array.from({ length: 5 }, () => t.newClient({ namespace }));
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(300);
      return "v2";
    };
    const results = await Promise.all(clients.map((c) => c.wrap("page", loader, options)));
    expect(results).toEqual(Array(5).fill("v1"));
    for (let i = 0; i < 200 && (await t.client.get("page", { namespace })) !== "v2"; i++) await sleep(10);
    expect(await t.client.get("page", { namespace })).toBe("v2");
    expect(calls).toBe(1);
  });

  it("caches a loader's undefined only with negativeTtl, and tells it from a cached null", async () => {
    const namespace = ns();
    let calls = 0;
    const nothing = async () => {
      calls++;
      return undefined;
    };
    await t.client.wrap("absent", nothing, { namespace });
    await t.client.wrap("absent", nothing, { namespace });
    expect(calls).toBe(2);
    await t.client.wrap("absent2", nothing, { namespace, negativeTtl: 5_000, ttl: 60_000 });
    expect(await t.client.wrap("absent2", nothing, { namespace, negativeTtl: 5_000 })).toBeUndefined();
    expect(calls).toBe(3);
    await t.client.settled();
    expect((await t.client.getEntry("absent2", { namespace }))?.ttlRemainingMs).toBe(5_000);
    expect(await t.client.has("absent2", { namespace })).toBe(true);
    await t.client.wrap("null", async () => null, { namespace });
    await t.client.settled();
    expect(await t.client.getEntry("null", { namespace })).toMatchObject({ value: null, contentType: "application/json" });
    expect((await t.client.getEntry("absent2", { namespace }))?.contentType).toBe("application/vnd.tiercache.tagged+json");
  });

  it("wrapMany sends only the missing keys to one loader call", async () => {
    const namespace = ns();
    await t.client.setMany({ a: 1, b: 2 }, { namespace });
    const asked: string[][] = [];
    const result = await t.client.wrapMany(["a", "b", "c", "d"], async (missing) => {
      asked.push(missing);
      return { c: 3 };
    }, { namespace, negativeTtl: 1_000 });
    expect(asked).toEqual([["c", "d"]]);
    expect(result).toEqual(new Map([["a", 1], ["b", 2], ["c", 3]]));
    expect(await t.client.get("c", { namespace })).toBe(3);
    expect(await t.client.has("d", { namespace })).toBe(true);
  });

  it("caches method results with the standard decorator and a stable key", async () => {
    const namespace = ns();
    const client: CacheClient = t.newClient({ namespace });
    let calls = 0;
    class Users {
      @client.cached({ ttl: 60_000 })
      async byId(id: number, opts: { full: boolean; tags: string[] }) {
        calls++;
        return { id, full: opts.full, tags: opts.tags };
      }
      @client.cached({ key: (id: number) => `user-name:${id}` })
      async name(id: number) {
        calls++;
        return `user ${id}`;
      }
    }
    const users = new Users();
    expect(await users.byId(1, { full: true, tags: ["a"] })).toEqual({ id: 1, full: true, tags: ["a"] });
    expect(await users.byId(1, { tags: ["a"], full: true })).toEqual({ id: 1, full: true, tags: ["a"] });
    expect(calls).toBe(1);
    await users.byId(2, { full: true, tags: ["a"] });
    expect(calls).toBe(2);
    expect(await users.name(7)).toBe("user 7");
    await client.settled();
    expect(await client.get("user-name:7")).toBe("user 7");
    expect(await client.get(keyFromArguments("Users.byId", [1, { full: true, tags: ["a"] }]))).toEqual({ id: 1, full: true, tags: ["a"] });
  });
});

describe("wrap bounds", () => {
  let t: TestServer;
  let n = 0;
  const ns = () => `bounds${++n}`;

  beforeAll(async () => {
    t = await startTestServer({ storage: "memory", maxBatch: 10 });
  });
  afterAll(async () => {
    await t.dispose();
  });

  it("wrapMany splits reads and writes into batches no larger than the client's batch size", async () => {
    const namespace = ns();
    const client = t.newClient({ namespace, streamBatchSize: 10 });
    const keys = Array.from({ length: 35 }, (_, i) => `k${i}`);
    await client.setMany(new Map(keys.slice(0, 5).map((key) => [key, `stored ${key}`])));
    const asked: string[][] = [];
    const result = await client.wrapMany(
      [...keys, ...keys],
      async (missing) => {
        asked.push(missing);
        return new Map(missing.filter((_, i) => i % 2 === 0).map((key) => [key, `loaded ${key}`]));
      },
      { ttl: 60_000, negativeTtl: 60_000 },
    );
    expect(asked).toEqual([keys.slice(5)]);
    const loaded = keys.slice(5).filter((_, i) => i % 2 === 0);
    expect(result).toEqual(new Map([...keys.slice(0, 5).map((key) => [key, `stored ${key}`] as const), ...loaded.map((key) => [key, `loaded ${key}`] as const)]));
    const reread = await client.wrapMany(keys, async () => {
      throw new Error("everything is cached now");
    });
    expect(reread).toEqual(result);
    expect(await client.getEntry(keys[6]!)).toMatchObject({ value: undefined });
  });

  it("stops waiting for a loader that never settles after its lease (leaseMs), and runs the loader again", async () => {
    const namespace = ns();
    const client = t.newClient({ namespace });
    const options = { ttl: 60_000, leaseMs: 200 };
    void client.wrap("k", () => new Promise<string>(() => {}), options);
    const joined = client.wrap("k", async () => "second run", options);
    const outcome = await Promise.race([joined, sleep(5_000).then(() => "still waiting")]);
    expect(outcome).toBe("second run");
    expect(await client.wrap("k", async () => "third run", options)).toBe("second run");
  });
});

describe("keyFromArguments", () => {
  it("is stable across property, Map and Set order, and hashes long keys", () => {
    expect(keyFromArguments("f", [{ a: 1, b: [2, 3] }])).toBe(keyFromArguments("f", [{ b: [2, 3], a: 1 }]));
    expect(keyFromArguments("f", [new Map([["x", 1], ["y", 2]])])).toBe(keyFromArguments("f", [new Map([["y", 2], ["x", 1]])]));
    expect(keyFromArguments("f", [new Set([1, 2])])).toBe(keyFromArguments("f", [new Set([2, 1])]));
    expect(keyFromArguments("f", [1])).not.toBe(keyFromArguments("f", ["1"]));
    expect(keyFromArguments("f", [undefined])).not.toBe(keyFromArguments("f", [null]));
    expect(keyFromArguments("f", [new Date(0), 5n])).toBe('f:Date(1970-01-01T00:00:00.000Z),5n');
    expect(keyFromArguments("f", ["x".repeat(500)])).toMatch(/^f:sha256:[\w-]{43}$/);
    expect(() => keyFromArguments("f", [() => 1])).toThrow(/key function/);
  });
});

describe("wrap's failures", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory", maxKeyBytes: 16 });
  });
  afterAll(async () => {
    await t.dispose();
  });

  it("name in their stack the functions that await wrap, as every other call's do, also for callers joining a flight (helper-98)", async () => {
    const client = t.newClient({ namespace: "failures" });
    const key = "a key the server finds too long";
    async function firstCallerNamedForTheStack(lease: boolean) {
      return await client.wrap(key, async () => "never stored", { ttl: 60_000, lease });
    }
    async function joiningCallerNamedForTheStack() {
      return await client.wrap(key, async () => "never stored", { ttl: 60_000 });
    }
    for (const lease of [true, false]) {
      const [first, joining] = await Promise.all([firstCallerNamedForTheStack(lease).catch((e: unknown) => e), joiningCallerNamedForTheStack().catch((e: unknown) => e)]);
      for (const [err, caller] of [[first, "firstCallerNamedForTheStack"], [joining, "joiningCallerNamedForTheStack"]] as const) {
        expect(RpcError.is(err, Status.INVALID_ARGUMENT)).toBe(true);
        expect((err as RpcError).details).toMatch(/longer than max-key-bytes/);
        expect(inspect(err)).toContain(caller);
      }
    }
    class NotFound extends RpcError {
      constructor(readonly userId: number) {
        super(Status.NOT_FOUND, `user ${userId}`);
      }
    }
    for (const thrown of [new Error("the loader's own"), new NotFound(42)]) {
      await expect(client.wrap("short", async () => Promise.reject(thrown), { ttl: 60_000 })).rejects.toBe(thrown); // helper-99: not made again
    }
    await client.close();
  });
});
