import { createCache } from "cache-manager";
import Keyv, { type KeyvStoreAdapter } from "keyv";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RpcError, Status } from "../../client/index.js";
import { TiercacheKeyvStore, tiercacheNamespaceOf } from "../../client/keyv-store.js";
import { closedPort } from "../helpers/closed-port.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

describe("TiercacheKeyvStore over a real server", () => {
  const clock = fakeClock();
  let t: TestServer;
  const stores: TiercacheKeyvStore[] = [];

  /** A Keyv over a new store that shares the test server's client. */
  function keyv(namespace: string | undefined, options: { throwOnErrors?: boolean; raw?: boolean } = {}): Keyv {
    const store = new TiercacheKeyvStore({ client: t.client });
    stores.push(store);
    const instance = new Keyv({
      store,
      ...(options.throwOnErrors !== undefined && { throwOnErrors: options.throwOnErrors }),
    });
    if (options.raw) {
      instance.serialize = undefined;
      instance.deserialize = undefined;
    }
    instance.namespace = namespace; // also when undefined, which the constructor would replace by "keyv"
    return instance;
  }

  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" }, { clock: clock.now });
  });
  afterAll(async () => {
    await t.dispose();
  });

  it("implements Keyv's store adapter interface", () => {
    // setMany returns the per-entry results Keyv's own setMany() returns, where KeyvStoreAdapter says void.
    const store: Omit<KeyvStoreAdapter, "setMany"> = new TiercacheKeyvStore({ client: t.client });
    expect(typeof store.getMany).toBe("function");
  });

  it("gets, sets, deletes and tells presence, under the tiercache namespace of the Keyv namespace", async () => {
    const users = keyv("basic");
    expect(await users.get("ada")).toBeUndefined();
    expect(await users.set("ada", { name: "Ada", born: 1815 })).toBe(true);
    expect(await users.get("ada")).toEqual({ name: "Ada", born: 1815 });
    expect(await users.has("ada")).toBe(true);
    // The Keyv key "basic:ada" is the tiercache key "ada" in namespace "basic".
    expect(await t.client.has("ada", { namespace: "basic" })).toBe(true);
    expect(await t.client.has("basic:ada", { namespace: "basic" })).toBe(false);
    expect(await users.delete("ada")).toBe(true);
    expect(await users.delete("ada")).toBe(false);
    expect(await users.get("ada")).toBeUndefined();
    expect(await users.has("ada")).toBe(false);
  });

  it("passes the TTL in ms to the server, which expires the entry itself", async () => {
    const sessions = keyv("ttl");
    // Only the server's clock is fake; the TTL is long enough that Keyv's own expiry check (real time) never fires.
    await sessions.set("s1", "v", 60_000);
    await sessions.set("forever", "v");
    expect((await t.client.getEntry("s1", { namespace: "ttl" }))?.ttlRemainingMs).toBe(60_000);
    expect((await t.client.getEntry("forever", { namespace: "ttl" }))?.ttlRemainingMs).toBe(0);
    clock.advance(59_999);
    expect(await sessions.get("s1")).toBe("v");
    clock.advance(1);
    expect(await t.client.has("s1", { namespace: "ttl" })).toBe(false);
    expect(await sessions.get("s1")).toBeUndefined();
    expect(await sessions.has("s1")).toBe(false);
    expect(await sessions.get("forever")).toBe("v");

    // Keyv's default TTL, fractional TTLs, and a TTL already past.
    const withDefault = new Keyv({ store: new TiercacheKeyvStore({ client: t.client }), namespace: "ttl", ttl: 1000 });
    await withDefault.set("d", 1);
    expect((await t.client.getEntry("d", { namespace: "ttl" }))?.ttlRemainingMs).toBe(1000);
    await sessions.set("frac", 1, 10.2);
    expect((await t.client.getEntry("frac", { namespace: "ttl" }))?.ttlRemainingMs).toBe(11);
    await sessions.set("past", 1, -5);
    expect(await t.client.has("past", { namespace: "ttl" })).toBe(false);
  });

  it("keeps Keyv namespaces apart, and clear() empties only its own namespace", async () => {
    const clearSpy = vi.spyOn(t.client, "clear");
    const users = keyv("users");
    const sessions = keyv("sessions");
    await users.set("k", "user value");
    await sessions.set("k", "session value");
    await t.client.set("k", "outside", { namespace: "other" });
    expect(await users.get("k")).toBe("user value");
    expect(await sessions.get("k")).toBe("session value");

    await users.clear();
    expect(clearSpy).toHaveBeenCalledTimes(1);
    expect(clearSpy).toHaveBeenCalledWith({ namespace: "users" });
    clearSpy.mockRestore();
    expect(await users.get("k")).toBeUndefined();
    expect(await sessions.get("k")).toBe("session value");
    expect(await t.client.get("k", { namespace: "other" })).toBe("outside");

    // Keyv can change its namespace later; the store follows.
    sessions.namespace = "users";
    expect(await sessions.get("k")).toBeUndefined();
  });

  it("maps Keyv namespaces that tiercache does not allow to distinct valid names", async () => {
    const valid = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
    const names = ["my app/v2", "my_app_v2", "my app:v2", "-lead", "", "é", "x".repeat(200), "x".repeat(201)];
    const mapped = names.map(tiercacheNamespaceOf);
    for (const name of mapped) expect(name).toMatch(valid);
    expect(new Set(mapped).size).toBe(names.length);
    expect(tiercacheNamespaceOf("users.v1")).toBe("users.v1");
    expect(tiercacheNamespaceOf("my app/v2")).toMatch(/^my_app_v2-[0-9a-f]{8}$/);
    // A valid name shaped like a mapped one is mapped too, or it would share the other's namespace (found by review).
    // The last two hash the same bytes unless the encodings are told apart: UTF-8 of the first, UTF-16LE of the second (found by review).
    const lookalikes = [tiercacheNamespaceOf("my app/v2"), tiercacheNamespaceOf(""), "cache-0123abcd", "0123abcd", "x\ud800", "x\udbff", "x\ufffd", "\u0080\u0800\u0600 ", "\u80c2\ua0e0\ud880\u2080"];
    const mappedLookalikes = lookalikes.map(tiercacheNamespaceOf);
    for (const name of mappedLookalikes) expect(name).toMatch(valid);
    expect(new Set([...mapped, ...mappedLookalikes]).size).toBe(names.length + lookalikes.length);
    expect(tiercacheNamespaceOf("cache-0123abcd")).toMatch(/^cache-0123abcd-[0-9a-f]{8}$/);
    expect(tiercacheNamespaceOf("users-v1.2")).toBe("users-v1.2");

    const odd = keyv("my app/v2");
    const plain = keyv("my_app_v2");
    await odd.set("k", 1);
    await plain.set("k", 2);
    expect(await t.client.get("k", { namespace: tiercacheNamespaceOf("my app/v2") })).toBeTypeOf("string");
    await odd.clear();
    expect(await odd.get("k")).toBeUndefined();
    expect(await plain.get("k")).toBe(2);
  });

  it("without a Keyv namespace, uses the client's namespace and the keys as they are", async () => {
    const client = t.newClient({ namespace: "no-keyv-ns" });
    const bare = new Keyv({ store: new TiercacheKeyvStore({ client }) });
    bare.namespace = undefined;
    await bare.set("a:b", 1);
    expect(await client.has("a:b")).toBe(true);
    expect(await bare.get("a:b")).toBe(1);
    await bare.clear();
    expect(await client.has("a:b")).toBe(false);
  });

  it("getMany and deleteMany, in batches larger than the server's max-batch", async () => {
    const many = keyv("many");
    await many.set("a", 1);
    await many.set("b", { two: 2 });
    expect(await many.getMany(["a", "missing", "b", "a"])).toEqual([1, undefined, { two: 2 }, 1]);
    expect(await many.deleteMany(["a", "b", "missing"])).toBe(true);
    expect(await many.getMany(["a", "b"])).toEqual([undefined, undefined]);
    expect(await many.deleteMany(["a", "b"])).toBe(false);

    const keys = Array.from({ length: 2500 }, (_, i) => `k${i}`);
    await many.setMany(keys.map((key, i) => ({ key, value: i })));
    expect(await many.getMany(keys)).toEqual(keys.map((_, i) => i));
    expect(await many.deleteMany(keys)).toBe(true);
    expect(await t.client.getMany(keys.slice(0, 1000), { namespace: "many" })).toEqual(new Map());
  });

  it("setMany writes with each entry's TTL", async () => {
    const many = keyv("set-many");
    expect(await many.setMany([{ key: "a", value: 1, ttl: 60_000 }, { key: "b", value: 2 }, { key: "c", value: 3, ttl: 60_000 }])).toEqual([true, true, true]);
    const remaining = (await t.client.getEntry("a", { namespace: "set-many" }))?.ttlRemainingMs ?? 0;
    expect(remaining).toBeGreaterThan(50_000);
    expect(remaining).toBeLessThanOrEqual(60_000);
    expect((await t.client.getEntry("b", { namespace: "set-many" }))?.ttlRemainingMs).toBe(0);
    expect(await many.getMany(["a", "b", "c"])).toEqual([1, 2, 3]);
  });

  it("setMany with a key given twice keeps the last entry, whatever order the calls would finish in", async () => {
    const store = new TiercacheKeyvStore({ client: t.client, batchSize: 1 });
    store.namespace = "dup";
    const setMany = t.client.setMany.bind(t.client);
    let calls = 0;
    // The first call sent is the last to reach the server, as can happen with calls in flight at once.
    const spy = vi.spyOn(t.client, "setMany").mockImplementation(async (entries, options) => {
      if (calls++ === 0) await new Promise((r) => setTimeout(r, 100));
      return setMany(entries, options);
    });
    try {
      const entries = [
        { key: "dup:k", value: "first", ttl: 60_000 },
        { key: "dup:j", value: 1 },
        { key: "dup:k", value: "last" },
        { key: "dup:j", value: 2, ttl: 1_000 },
      ];
      expect(await store.setMany(entries)).toEqual([true, true, true, true]);
    } finally {
      spy.mockRestore();
    }
    expect(await t.client.getEntry("k", { namespace: "dup" })).toMatchObject({ value: "last", ttlRemainingMs: 0 });
    expect(await t.client.getEntry("j", { namespace: "dup" })).toMatchObject({ value: 2, ttlRemainingMs: 1_000 });
  });

  it("refuses TTLs that are negative, not finite or over 100 years, and rounds fractions up", async () => {
    const store = new TiercacheKeyvStore({ client: t.client });
    store.namespace = "keyv-ttl";
    for (const ttl of [-5, Number.NaN, Number.POSITIVE_INFINITY, 1e13]) {
      await expect(store.set("keyv-ttl:k", 1, ttl), String(ttl)).rejects.toSatisfy((err) => RpcError.is(err, Status.INVALID_ARGUMENT));
      await expect(store.setMany([{ key: "keyv-ttl:k", value: 1, ttl }]), String(ttl)).rejects.toSatisfy((err) => RpcError.is(err, Status.INVALID_ARGUMENT));
    }
    expect(await t.client.has("k", { namespace: "keyv-ttl" })).toBe(false);
    await store.setMany([{ key: "keyv-ttl:k", value: 1, ttl: 0.2 }]);
    expect((await t.client.getEntry("k", { namespace: "keyv-ttl" }))?.ttlRemainingMs).toBe(1);
  });

  it("round-trips complex values exactly as Keyv's own in-memory store does", async () => {
    const values: Record<string, unknown> = {
      object: { name: "Ada", tags: ["a", "b"], nested: { deep: [1, { x: null }] } },
      date: new Date("2024-01-02T03:04:05.006Z"),
      objectWithDate: { at: new Date("2024-01-02T03:04:05.006Z") },
      buffer: Buffer.from([0, 1, 255]),
      colonString: ":starts with a colon",
      unicode: "naïve ☃ 𝄞",
      number: -0.5,
      nullValue: null,
      emptyString: "",
      array: [1, "two", false, null],
    };
    const tiered = keyv("complex");
    const reference = new Keyv({ namespace: "complex" });
    for (const [key, value] of Object.entries(values)) {
      await tiered.set(key, value);
      await reference.set(key, value);
    }
    for (const key of Object.keys(values)) {
      expect(await tiered.get(key), key).toEqual(await reference.get(key));
    }
    // Keyv's serializer turns a Date into its ISO string.
    expect(await tiered.get("date")).toBe("2024-01-02T03:04:05.006Z");
    // What tiercache stored is the string Keyv's serializer produced.
    expect(await t.client.get("object", { namespace: "complex" })).toBe(JSON.stringify({ value: values["object"] }));
  });

  it("with Keyv's serialization disabled, stores raw values through the client's serializer (Dates stay Dates)", async () => {
    const raw = keyv("raw", { raw: true });
    const value = { at: new Date("2024-01-02T03:04:05.006Z"), big: 10n ** 20n, map: new Map([["k", new Set([1])]]) };
    await raw.set("v", value);
    expect(await raw.get("v")).toEqual(value);
    expect(((await raw.get("v")) as typeof value).at).toBeInstanceOf(Date);
  });

  it("works unchanged under cache-manager v7 (get/set/wrap/del/mset/mget/ttl/clear)", async () => {
    const cache = createCache({ stores: [keyv("cm")] });
    expect(await cache.get("k")).toBeUndefined();
    expect(await cache.set("k", { v: 1 })).toEqual({ v: 1 });
    expect(await cache.get("k")).toEqual({ v: 1 });
    expect(await t.client.has("k", { namespace: "cm" })).toBe(true);

    const loader = vi.fn(async () => ({ computed: true }));
    expect(await cache.wrap("w", loader, 60_000)).toEqual({ computed: true });
    expect(await cache.wrap("w", loader, 60_000)).toEqual({ computed: true });
    expect(loader).toHaveBeenCalledTimes(1);
    expect((await t.client.getEntry("w", { namespace: "cm" }))?.ttlRemainingMs).toBe(60_000);
    const expires = await cache.ttl("w");
    expect(expires).toBeGreaterThan(Date.now());
    expect(expires).toBeLessThanOrEqual(Date.now() + 60_000);

    await cache.mset([{ key: "m1", value: 1 }, { key: "m2", value: 2 }]);
    expect(await cache.mget(["m1", "m2", "nope"])).toEqual([1, 2, undefined]);

    expect(await cache.del("k")).toBe(true);
    expect(await cache.get("k")).toBeUndefined();
    await cache.clear();
    expect(await cache.get("w")).toBeUndefined();
    expect(await t.client.has("m1", { namespace: "cm" })).toBe(false);
  });

  it("reports service errors the way Keyv expects: emitted once, rethrown with throwOnErrors", async () => {
    const tooLong = "x".repeat(2000); // over max-key-bytes: INVALID_ARGUMENT from the server
    const errors: unknown[] = [];
    const lenient = keyv("errors");
    lenient.on("error", (err: unknown) => errors.push(err));
    expect(await lenient.set(tooLong, 1)).toBe(false);
    expect(await lenient.get(tooLong)).toBeUndefined();
    expect(await lenient.delete(tooLong)).toBe(false);
    expect(await lenient.deleteMany([tooLong])).toBe(false);
    expect(errors).toHaveLength(4);
    for (const err of errors) expect(RpcError.is(err, Status.INVALID_ARGUMENT)).toBe(true);
    await expect(lenient.has(tooLong)).rejects.toSatisfy((err) => RpcError.is(err, Status.INVALID_ARGUMENT));
    await expect(lenient.getMany([tooLong])).rejects.toSatisfy((err) => RpcError.is(err, Status.INVALID_ARGUMENT));

    const strict = keyv("errors", { throwOnErrors: true });
    await expect(strict.set(tooLong, 1)).rejects.toSatisfy((err) => RpcError.is(err, Status.INVALID_ARGUMENT));
    await expect(strict.get(tooLong)).rejects.toSatisfy((err) => RpcError.is(err, Status.INVALID_ARGUMENT));
  });

  it("reports an unreachable server as UNAVAILABLE errors, and disconnect() closes only a client it created", async () => {
    const store = new TiercacheKeyvStore({ address: `127.0.0.1:${await closedPort()}`, timeoutMs: 2000 });
    const down = new Keyv({ store, namespace: "down" });
    const errors: unknown[] = [];
    down.on("error", (err: unknown) => errors.push(err));
    expect(await down.set("k", 1)).toBe(false);
    expect(await down.get("k")).toBeUndefined();
    expect(await down.clear()).toBeUndefined();
    expect(errors.map((err) => (err instanceof RpcError ? err.code : err))).toEqual([Status.UNAVAILABLE, Status.UNAVAILABLE, Status.UNAVAILABLE]);
    await down.disconnect();

    const shared = keyv("shared");
    await shared.disconnect();
    expect(await t.client.set("still-open", 1)).toEqual({ degraded: false });
    expect(await t.client.get("still-open")).toBe(1);
  });

  afterAll(async () => {
    for (const store of stores) await store.disconnect();
  });
});
