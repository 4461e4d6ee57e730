import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { RedisTier } from "../../server/tiers/redis-tier.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";

/**
 * A lone operation's commands skip ioredis's auto-pipelining (server/tiers/idle-bypass.ts).
 * It must not reorder anything: the single-command operations issued back to
 * back on one tier still take effect in the order issued, whichever way each
 * one is sent. (The MULTI-based ones, setMany and delete, were never ordered
 * against them: ioredis writes a MULTI at once while auto-pipelined commands
 * wait for setImmediate; the engine never relies on the order of concurrent
 * tier operations, it drops keys whose changes overlapped.)
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
  | { kind: "settle" };

const key = fc.constantFrom("a", "b", "c");
const value = fc.string({ minLength: 1, maxLength: 8 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("set" as const), key, value }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("get" as const), key }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("getMany" as const), keys: fc.array(key, { minLength: 1, maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("has" as const), key }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("touch" as const), key }) },
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

describe("RedisTier: lone commands sent without auto-pipelining", () => {
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
});
