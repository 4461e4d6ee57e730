import fc from "fast-check";
import Keyv from "keyv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheClient, RpcError, Status, type CachedOptions, type WrapOptions } from "../../client/index.js";
import { TiercacheKeyvStore } from "../../client/keyv-store.js";
import { MAX_TTL_MS } from "../../core/ttl-rules.js";
import { closedPort } from "../helpers/closed-port.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/** Runs a call to its end (draining a stream); the RpcError it failed with, or undefined. Any other error is rethrown. */
async function rpcFailure(call: () => unknown): Promise<RpcError | undefined> {
  try {
    const result = call();
    if (result !== null && typeof result === "object" && Symbol.asyncIterator in result) {
      for await (const _ of result as AsyncIterable<unknown>) void _;
    } else {
      await result;
    }
    return undefined;
  } catch (err) {
    if (RpcError.is(err)) return err;
    throw err;
  }
}

function cachedCall(client: CacheClient, options: CachedOptions<[]>, loader: () => Promise<unknown>): Promise<unknown> {
  class Source {
    @client.cached(options)
    async load() {
      return loader();
    }
  }
  return new Source().load();
}

const loaded = async () => "loaded";

/** Every client method that takes keys, called with `key` (beside a good key where it takes several). */
const KEY_CALLS: Record<string, (c: CacheClient, key: string, o: { namespace?: string }) => unknown> = {
  get: (c, key, o) => c.get(key, o),
  getEntry: (c, key, o) => c.getEntry(key, o),
  getLocal: (c, key, o) => c.getLocal(key, o),
  set: (c, key, o) => c.set(key, 1, o),
  delete: (c, key, o) => c.delete(key, o),
  has: (c, key, o) => c.has(key, o),
  touch: (c, key, o) => c.touch(key, { ...o, ttl: 1000 }),
  getMany: (c, key, o) => c.getMany(["good", key], o),
  setMany: (c, key, o) => c.setMany([["good", 1], [key, 2]], o),
  deleteMany: (c, key, o) => c.deleteMany(["good", key], o),
  streamGet: (c, key, o) => c.streamGet(["good", key], o),
  streamSet: (c, key, o) => c.streamSet([["good", 1], [key, 2]], o),
  wrap: (c, key, o) => c.wrap(key, loaded, o),
  getOrSet: (c, key, o) => c.getOrSet(key, loaded, o),
  wrapMany: (c, key, o) => c.wrapMany(["good", key], async () => ({ good: 1 }), o),
  cached: (c, key, o) => cachedCall(c, { ...o, key: () => key }, loaded),
};

/** Every Keyv store method that takes keys. */
const KEYV_CALLS: Record<string, (s: TiercacheKeyvStore, key: string) => unknown> = {
  get: (s, key) => s.get(key),
  getMany: (s, key) => s.getMany(["good", key]),
  set: (s, key) => s.set(key, 1),
  setMany: (s, key) => s.setMany([{ key: "good", value: 1 }, { key, value: 2 }]),
  delete: (s, key) => s.delete(key),
  deleteMany: (s, key) => s.deleteMany(["good", key]),
  has: (s, key) => s.has(key),
};

/** Every method that takes a duration, called with `ms` as that duration. */
const DURATION_CALLS: Record<string, (c: CacheClient, ms: number, loader: () => Promise<unknown>) => unknown> = {
  "set ttl": (c, ms) => c.set("k", 1, { ttl: ms }),
  "setMany ttl": (c, ms) => c.setMany({ k: 1 }, { ttl: ms }),
  "touch ttl": (c, ms) => c.touch("k", { ttl: ms }),
  "streamSet ttl": (c, ms) => c.streamSet([["k", 1]], { ttl: ms }),
  "wrap ttl": (c, ms, loader) => c.wrap("k", loader, { ttl: ms }),
  "wrap grace": (c, ms, loader) => c.wrap("k", loader, { ttl: 1000, grace: ms }),
  "wrap negativeTtl": (c, ms, loader) => c.wrap("k", loader, { negativeTtl: ms }),
  "getOrSet ttl": (c, ms, loader) => c.getOrSet("k", loader, { ttl: ms }),
  "wrapMany ttl": (c, ms, loader) => c.wrapMany(["k"], async () => ({ k: await loader() }), { ttl: ms }),
  "wrapMany grace": (c, ms, loader) => c.wrapMany(["k"], async () => ({ k: await loader() }), { grace: ms }),
  "wrapMany negativeTtl": (c, ms, loader) => c.wrapMany(["k"], async () => ({ k: await loader() }), { negativeTtl: ms }),
  "cached ttl": (c, ms, loader) => cachedCall(c, { ttl: ms }, loader),
  "Keyv set ttl": (c, ms) => new TiercacheKeyvStore({ client: c }).set("k", 1, ms),
  "Keyv setMany ttl": (c, ms) => new TiercacheKeyvStore({ client: c }).setMany([{ key: "k", value: 1, ttl: ms }]),
};

const BAD_DURATIONS = [-1, -0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, MAX_TTL_MS + 1];

/** A key with one lone surrogate at `prefix.length`, the rest well-formed. */
const keyWithLoneSurrogate = fc
  .tuple(fc.string({ unit: "binary", maxLength: 20 }), fc.integer({ min: 0xd800, max: 0xdfff }), fc.string({ unit: "binary", maxLength: 20 }))
  .map(([prefix, unit, suffix]) => ({ key: prefix + String.fromCharCode(unit) + suffix, index: prefix.length }));

describe("arguments the client refuses before sending", () => {
  let nowhere: CacheClient;
  beforeAll(async () => {
    // Nothing listens there: a call that was sent fails UNAVAILABLE, one refused first INVALID_ARGUMENT.
    nowhere = new CacheClient({ address: `127.0.0.1:${await closedPort()}`, timeoutMs: 2000, retryReads: false, localTier: true });
  });
  afterAll(() => nowhere.close());

  const halfEmoji = "ab" + "😀".slice(0, 1);

  it.each(Object.keys(KEY_CALLS))("%s refuses a key that is not well-formed Unicode", async (method) => {
    const err = await rpcFailure(() => KEY_CALLS[method]!(nowhere, halfEmoji, {}));
    expect(err?.code, err?.message).toBe(Status.INVALID_ARGUMENT);
    expect(err?.details).toBe('key "ab\\ud83d" is not well-formed Unicode (lone surrogate at index 2)');
  });

  it.each(Object.keys(KEY_CALLS))("%s refuses an empty key", async (method) => {
    const err = await rpcFailure(() => KEY_CALLS[method]!(nowhere, "", {}));
    expect(err?.code, err?.message).toBe(Status.INVALID_ARGUMENT);
    expect(err?.details).toBe("key must not be empty");
  });

  it.each(Object.keys(KEY_CALLS))("%s refuses an invalid namespace", async (method) => {
    for (const namespace of ["no spaces", "-dash-first", "x".repeat(65), "ns\ud83d"]) {
      const err = await rpcFailure(() => KEY_CALLS[method]!(nowhere, "k", { namespace }));
      expect(err?.code, err?.message).toBe(Status.INVALID_ARGUMENT);
      expect(err?.details).toMatch(/^invalid namespace /);
    }
  });

  it("refuses a timeoutMs grpc-js cannot carry with INVALID_ARGUMENT in every call, and in the client's options", async () => {
    const calls: Record<string, (c: CacheClient, timeoutMs: number) => unknown> = {
      get: (c, timeoutMs) => c.get("k", { timeoutMs }),
      getEntry: (c, timeoutMs) => c.getEntry("k", { timeoutMs }),
      set: (c, timeoutMs) => c.set("k", 1, { timeoutMs }),
      delete: (c, timeoutMs) => c.delete("k", { timeoutMs }),
      has: (c, timeoutMs) => c.has("k", { timeoutMs }),
      touch: (c, timeoutMs) => c.touch("k", { ttl: 1, timeoutMs }),
      getMany: (c, timeoutMs) => c.getMany(["k"], { timeoutMs }),
      setMany: (c, timeoutMs) => c.setMany({ k: 1 }, { timeoutMs }),
      deleteMany: (c, timeoutMs) => c.deleteMany(["k"], { timeoutMs }),
      streamGet: (c, timeoutMs) => c.streamGet(["k"], { timeoutMs }),
      streamSet: (c, timeoutMs) => c.streamSet([["k", 1]], { timeoutMs }),
      stats: (c, timeoutMs) => c.stats({ timeoutMs }),
      clear: (c, timeoutMs) => c.clear({ timeoutMs }),
      invalidateTags: (c, timeoutMs) => c.invalidateTags(["t"], { timeoutMs }),
    };
    for (const [name, call] of Object.entries(calls)) {
      for (const timeoutMs of [1e15, -5, 0, Number.NaN]) {
        const err = await rpcFailure(() => call(nowhere, timeoutMs));
        expect(err?.code, `${name} ${timeoutMs}: ${err?.message}`).toBe(Status.INVALID_ARGUMENT);
        expect(err?.details).toMatch(/^timeoutMs must be a number of ms over 0 and at most 2147483647/);
      }
    }
    for (const timeoutMs of [1e15, -5, 0, Number.NaN]) {
      expect(() => new CacheClient({ address: "127.0.0.1:1", timeoutMs })).toThrow(/^timeoutMs must be a number of ms over 0/);
    }
  });

  it("refuses an invalid namespace in the client's options", () => {
    expect(() => new CacheClient({ address: "127.0.0.1:1", namespace: "no spaces" })).toThrow(/^invalid namespace "no spaces"/);
  });

  it.each(Object.keys(KEYV_CALLS))("the Keyv store's %s refuses a key that is not well-formed Unicode", async (method) => {
    const err = await rpcFailure(() => KEYV_CALLS[method]!(new TiercacheKeyvStore({ client: nowhere }), halfEmoji));
    expect(err?.code, err?.message).toBe(Status.INVALID_ARGUMENT);
  });

  it("refuses any key with a lone surrogate, naming its index (property)", async () => {
    await fc.assert(
      fc.asyncProperty(keyWithLoneSurrogate, async ({ key, index }) => {
        const err = await rpcFailure(() => nowhere.get(key));
        expect(err?.code).toBe(Status.INVALID_ARGUMENT);
        expect(err?.details).toMatch(new RegExp(`not well-formed Unicode \\(lone surrogate at index ${index}\\)$`));
      }),
      { numRuns: 300 },
    );
  });

  it("lets any well-formed key through to the server (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", minLength: 1, maxLength: 40 }), async (key) => {
        const err = await rpcFailure(() => nowhere.get(key));
        expect(err?.code).toBe(Status.UNAVAILABLE);
      }),
      { numRuns: 100 },
    );
  });

  it.each(Object.keys(DURATION_CALLS))("%s refuses negative, NaN, infinite and over-100-year durations", async (method) => {
    for (const ms of BAD_DURATIONS) {
      let loads = 0;
      const loader = async () => {
        loads++;
        return "loaded";
      };
      const err = await rpcFailure(() => DURATION_CALLS[method]!(nowhere, ms, loader));
      expect(err?.code, `${method} ${ms}: ${err?.message}`).toBe(Status.INVALID_ARGUMENT);
      expect(err?.details).toMatch(/out of range/);
      expect(loads, `${method} ${ms}`).toBe(0);
    }
  });
});

describe("keys and durations against a real server", () => {
  const clock = fakeClock();
  let t: TestServer;
  let n = 0;
  const ns = () => `args${++n}`;

  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" }, { clock: clock.now });
  });
  afterAll(async () => {
    await t.dispose();
  });

  it("keeps keys that differ only in a lone surrogate from colliding on the server", async () => {
    const namespace = ns();
    const client = t.newClient({ namespace });
    const name = "José 😀";
    await expect(client.set(name.slice(0, 6), "first")).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
    await expect(client.set(`${name.slice(0, 5)}\udca9`, "second")).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
    expect(await client.has("José \ufffd")).toBe(false);
    await client.set(name, "whole");
    expect(await client.get(name)).toBe("whole");
  });

  it("rounds a fractional duration up to the next whole ms, in every method", async () => {
    const namespace = ns();
    const remaining = async (key: string) => (await t.client.getEntry(key, { namespace }))?.ttlRemainingMs;
    await t.client.set("set", 1, { namespace, ttl: 1500.5 });
    expect(await remaining("set")).toBe(1501);
    await t.client.set("tiny", 1, { namespace, ttl: 0.2 });
    expect(await remaining("tiny")).toBe(1);
    await t.client.setMany({ many: 1 }, { namespace, ttl: 1500.5 });
    expect(await remaining("many")).toBe(1501);
    await t.client.streamSet([["streamed", 1]], { namespace, ttl: 1500.5 });
    expect(await remaining("streamed")).toBe(1501);
    expect(await t.client.touch("set", { namespace, ttl: 2500.01 })).toBe(true);
    expect(await remaining("set")).toBe(2501);

    let loads = 0;
    const loader = async () => `loaded ${++loads}`;
    const options: WrapOptions = { namespace, ttl: 1500.5, grace: 0.5 };
    expect(await t.client.wrap("wrapped", loader, options)).toBe("loaded 1");
    expect(await t.client.wrap("wrapped", loader, options)).toBe("loaded 1");
    expect(loads).toBe(1);
    expect(await remaining("wrapped")).toBe(1501); // plain reads see it until its grace begins
    await t.client.wrapMany(["wm"], async () => ({ wm: 1 }), { namespace, ttl: 1500.5 });
    expect(await remaining("wm")).toBe(1501);
    await t.client.wrap("negative", async () => undefined, { namespace, negativeTtl: 99.9 });
    expect(await remaining("negative")).toBe(100);

    const keyv = new Keyv({ store: new TiercacheKeyvStore({ client: t.client }), namespace });
    await keyv.set("keyv", 1, 1500.5);
    expect(await remaining("keyv")).toBe(1501);
    await t.client.set("longest", 1, { namespace, ttl: MAX_TTL_MS });
    expect(await remaining("longest")).toBe(MAX_TTL_MS);
  });
});
