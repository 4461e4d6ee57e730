import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { RedisTier } from "../../server/tiers/redis-tier.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTcpProxy } from "../helpers/tcp-proxy.js";

/**
 * How the tier's commands reach Redis (server/tiers/write-coalescing.ts): a
 * lone operation's at once, concurrent ones in one write per turn of the
 * event loop through a corked socket. Neither may reorder anything: the
 * operations issued back to back on one standalone tier, single commands and
 * MULTIs alike, take effect in the order issued, whichever way each one is
 * sent. (A Lua script that ioredis sends again after NOSCRIPT does not: see
 * write-coalescing.ts.)
 */
const codec = new ValueCodec();
const envelope = (value: string) => codec.encode(new TextEncoder().encode(value), "text/plain", 0);
const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(codec.decode(bytes).value));

type Op =
  | { kind: "set"; key: string; value: string }
  | { kind: "get"; key: string }
  | { kind: "getMany"; keys: string[] }
  | { kind: "has"; key: string }
  | { kind: "touch"; key: string }
  | { kind: "delete"; key: string }
  | { kind: "setMany"; entries: { key: string; value: string }[] }
  | { kind: "settle" };

const key = fc.constantFrom("a", "b", "c");
const value = fc.string({ minLength: 1, maxLength: 8 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("set" as const), key, value }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("get" as const), key }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("getMany" as const), keys: fc.array(key, { minLength: 1, maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("has" as const), key }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("touch" as const), key }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), key }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("setMany" as const), entries: fc.array(fc.record({ key, value }), { minLength: 1, maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "settle" as const }) },
);

let redis: TestRedis;
let tier: RedisTier;
let run = 0;
beforeAll(async () => {
  redis = await startTestRedis({ args: [] });
  tier = await RedisTier.connect({ url: redis.url, keyPrefix: "bypass" });
});
afterAll(async () => {
  await tier?.close();
  await redis?.stop();
});

describe("RedisTier: how commands reach the connection", () => {
  it("operations issued back to back, without waiting, take effect in the order issued", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const ns = `run${run++}`;
        const model = new Map<string, string>();
        const pending: Promise<void>[] = [];
        for (const o of ops) {
          switch (o.kind) {
            case "set":
              model.set(o.key, o.value);
              pending.push(tier.set(ns, { key: o.key, envelope: envelope(o.value), expiresAt: 0 }));
              break;
            case "get": {
              const expected = model.get(o.key);
              pending.push(tier.get(ns, o.key).then((got) => expect(text(got), `get ${o.key}`).toBe(expected)));
              break;
            }
            case "getMany": {
              const expected = o.keys.map((k) => model.get(k));
              pending.push(tier.getMany(ns, o.keys).then((got) => expect(got.map(text), `getMany ${o.keys.join(",")}`).toEqual(expected)));
              break;
            }
            case "has": {
              const expected = model.has(o.key);
              pending.push(tier.has(ns, o.key).then((got) => expect(got, `has ${o.key}`).toBe(expected)));
              break;
            }
            case "touch": {
              const expected = model.has(o.key);
              pending.push(tier.touch(ns, o.key, Date.now() + 600_000).then((got) => expect(got, `touch ${o.key}`).toBe(expected)));
              break;
            }
            case "delete": {
              const expected = model.delete(o.key);
              pending.push(tier.delete(ns, o.key).then((got) => expect(got, `delete ${o.key}`).toBe(expected)));
              break;
            }
            case "setMany":
              for (const e of o.entries) model.set(e.key, e.value);
              pending.push(tier.setMany(ns, o.entries.map((e) => ({ key: e.key, envelope: envelope(e.value), expiresAt: 0 }))));
              break;
            case "settle":
              await Promise.all(pending.splice(0));
              break;
          }
        }
        await Promise.all(pending);
      }),
      { numRuns: 300 },
    );
  });

  it("lone operations still get their replies when they go straight to the connection", async () => {
    await tier.set("lone", { key: "k", envelope: envelope("v1"), expiresAt: Date.now() + 60_000 });
    expect(text(await tier.get("lone", "k"))).toBe("v1");
    await tier.set("lone", { key: "k", envelope: envelope("v2"), expiresAt: 0 });
    expect(text(await tier.get("lone", "k"))).toBe("v2");
    expect(await tier.get("lone", "missing")).toBeUndefined();
    expect(await tier.touch("lone", "k", Date.now() + 60_000)).toBe(true);
    expect(await tier.has("lone", "k")).toBe(true);
  });

  it("writes a later burst of operations while the replies of an earlier one are still outstanding", async () => {
    // ioredis's auto-pipelining held a batch until every reply of the one before it was back.
    const proxy = await startTcpProxy({ host: redis.host, port: redis.port });
    const proxied = await RedisTier.connect({ url: `redis://${proxy.host}:${proxy.port}`, keyPrefix: "bursts", commandTimeoutMs: 5_000 });
    try {
      await proxied.set("b", { key: "k", envelope: envelope("v"), expiresAt: 0 });
      const settle = () => new Promise((resolve) => setTimeout(resolve, 100));
      redis.pause();
      let first: Promise<(Uint8Array | undefined)[]> | undefined;
      let second: Promise<(Uint8Array | undefined)[]> | undefined;
      try {
        const before = proxy.bytesFromClients;
        first = Promise.all([0, 1, 2, 3].map(() => proxied.get("b", "k")));
        await settle();
        const afterFirst = proxy.bytesFromClients;
        second = Promise.all([0, 1, 2, 3].map(() => proxied.get("b", "k")));
        await settle();
        expect(afterFirst).toBeGreaterThan(before);
        expect(proxy.bytesFromClients - afterFirst).toBe(afterFirst - before);
      } finally {
        redis.resume();
        // Settled before the tier closes, whether the assertions above passed or not.
        await Promise.allSettled([first, second]);
      }
      expect((await first)!.map(text)).toEqual(["v", "v", "v", "v"]);
      expect((await second)!.map(text)).toEqual(["v", "v", "v", "v"]);
    } finally {
      await proxied.close();
      await proxy.close();
    }
  });
});
