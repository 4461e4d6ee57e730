import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { TierUnavailableError } from "../../core/errors.js";
import type { DurableWrite } from "../../server/engine/durable-tier.js";
import { redisKey } from "../../server/tiers/redis-keys.js";
import { SET_MANY_SCRIPT_MAX_BYTES, SET_MANY_SCRIPT_MAX_ENTRY_BYTES } from "../../server/tiers/redis-set-many.js";
import { RedisTier } from "../../server/tiers/redis-tier.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";

/*
 * setMany goes as one Lua script (keys in KEYS, value and TTL per key in
 * ARGV), or as MULTI/EXEC above SET_MANY_SCRIPT_MAX_BYTES or with entries
 * averaging over SET_MANY_SCRIPT_MAX_ENTRY_BYTES. Both must store the same
 * bytes under the same keys with the same TTLs.
 */

const PREFIX = "sm";
const codec = new ValueCodec({ maxValueBytes: 2 * SET_MANY_SCRIPT_MAX_BYTES });
const envelope = (value: Uint8Array, expiresAt = 0) => codec.encode(value, "application/octet-stream", expiresAt);
const bytes = (text: string) => new TextEncoder().encode(text);

/** Keys Redis or a framing could get wrong: NUL, braces (hash tags), globs, CR/LF, RESP look-alikes, every UTF-8 width. */
const ADVERSARIAL_KEYS = [
  "a\0b",
  "\0",
  "{x}",
  "}{",
  "{",
  "}",
  "*?[]\\",
  "line\nbreak\r\n",
  "$5\r\nhello\r\n",
  "*3\r\n",
  " ",
  "é",
  "€",
  "😀",
  "\u{10FFFF}",
  "𝄞{tag}😀",
  "é".repeat(512),
  "lone \uD800 surrogate", // not UTF-8: sent as U+FFFD, as ioredis sends any string argument
];

let redis: TestRedis;
let raw: Redis;
let tier: RedisTier;
beforeAll(async () => {
  redis = await startTestRedis({ args: [] });
  raw = new Redis(redis.url, { lazyConnect: true });
  await raw.connect();
  tier = await RedisTier.connect({ url: redis.url, keyPrefix: PREFIX });
});
afterAll(async () => {
  await tier?.close();
  raw?.disconnect();
  await redis?.stop();
});
beforeEach(async () => {
  await raw.flushall();
  await raw.config("RESETSTAT");
});

/** A batch mixing every TTL mode, empty and binary values, and a key written twice (the last write wins). */
function adversarialBatch(now: number): { writes: DurableWrite[]; expired: string[]; expiring: string[] } {
  const writes: DurableWrite[] = [];
  const expired: string[] = [];
  const expiring: string[] = [];
  ADVERSARIAL_KEYS.forEach((key, i) => {
    const mode = i % 3;
    const value = i % 4 === 0 ? new Uint8Array(0) : i % 4 === 1 ? bytes("\0\r\n\0") : i % 4 === 2 ? bytes(key) : randomBytes(1024);
    const expiresAt = mode === 0 ? 0 : mode === 1 ? now + 60_000 : now - 1;
    if (mode === 1) expiring.push(key);
    if (mode === 2) expired.push(key);
    writes.push({ key, envelope: envelope(value, expiresAt), expiresAt });
  });
  const last = envelope(bytes("second"));
  writes.push({ key: "twice", envelope: envelope(bytes("first")), expiresAt: 0 }, { key: "twice", envelope: last, expiresAt: 0 });
  return { writes, expired, expiring };
}

/** Checks that Redis holds exactly what `writes` say, byte for byte, and that the tier reads it back. */
async function expectStored(namespace: string, writes: readonly DurableWrite[], expired: readonly string[], expiring: readonly string[]): Promise<void> {
  const final = new Map(writes.map((write) => [write.key, write]));
  for (const key of expired) final.delete(key);
  const expected = [...final.keys()].map((key) => Buffer.from(redisKey(PREFIX, namespace, key), "utf8"));
  const stored = await raw.keysBuffer(`${PREFIX}:{${namespace}}:*`);
  expect(stored.map((k) => k.toString("hex")).sort()).toEqual(expected.map((k) => k.toString("hex")).sort());
  for (const [key, write] of final) {
    const id = redisKey(PREFIX, namespace, key);
    expect(Buffer.compare((await raw.getBuffer(id))!, Buffer.from(write.envelope)), JSON.stringify(key)).toBe(0);
    const pttl = await raw.pttl(id);
    if (expiring.includes(key)) {
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(60_000);
    } else {
      expect(pttl, JSON.stringify(key)).toBe(-1);
    }
    expect(Buffer.compare(Buffer.from((await tier.get(namespace, key))!), Buffer.from(write.envelope))).toBe(0);
    expect(await tier.has(namespace, key)).toBe(true);
  }
  for (const key of expired) expect(await tier.get(namespace, key)).toBeUndefined();
}

function commandStats(info: string): Record<string, number> {
  const stats: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) stats[match[1]!] = Number(match[2]);
  return stats;
}

/** A write whose value alone pushes a batch past SET_MANY_SCRIPT_MAX_BYTES. */
function oversized(): DurableWrite {
  return { key: "big", envelope: envelope(randomBytes(SET_MANY_SCRIPT_MAX_BYTES)), expiresAt: 0 };
}

describe("RedisTier.setMany", () => {
  it("stores adversarial keys byte-exact with no expiry, PX and delete in one script call", async () => {
    const now = Date.now();
    const { writes, expired, expiring } = adversarialBatch(now);
    // the expired entries exist before: the batch must remove them
    await tier.setMany("ns", expired.map((key) => ({ key, envelope: envelope(bytes("old")), expiresAt: 0 })));
    await raw.config("RESETSTAT");
    await tier.setMany("ns", writes);
    const stats = commandStats(await raw.info("commandstats"));
    expect((stats.eval ?? 0) + (stats.evalsha ?? 0)).toBe(1);
    expect(stats.multi ?? 0).toBe(0);
    expect(stats.set).toBe(writes.length - expired.length);
    expect(stats.unlink).toBe(expired.length);
    await expectStored("ns", writes, expired, expiring);
  });

  it("sends a batch over SET_MANY_SCRIPT_MAX_BYTES as MULTI/EXEC, storing the same", async () => {
    const now = Date.now();
    const { writes, expired, expiring } = adversarialBatch(now);
    await tier.setMany("ns", expired.map((key) => ({ key, envelope: envelope(bytes("old")), expiresAt: 0 })));
    await raw.config("RESETSTAT");
    const all = [...writes, oversized()];
    await tier.setMany("ns", all);
    const stats = commandStats(await raw.info("commandstats"));
    expect((stats.eval ?? 0) + (stats.evalsha ?? 0)).toBe(0);
    expect(stats.multi).toBe(1);
    expect(stats.exec).toBe(1);
    await expectStored("ns", all, expired, expiring);
  });

  it("sends a batch of big entries as MULTI/EXEC, and one of small entries as a script", async () => {
    const write = (key: string, size: number) => ({ key, envelope: envelope(randomBytes(size)), expiresAt: 0 });
    const big = Array.from({ length: 20 }, (_, i) => write(`big${i}`, SET_MANY_SCRIPT_MAX_ENTRY_BYTES));
    const small = Array.from({ length: 20 }, (_, i) => write(`small${i}`, SET_MANY_SCRIPT_MAX_ENTRY_BYTES / 2));
    await tier.setMany("ns", big);
    let stats = commandStats(await raw.info("commandstats"));
    expect([stats.multi, (stats.eval ?? 0) + (stats.evalsha ?? 0)]).toEqual([1, 0]);
    await tier.setMany("ns", small);
    stats = commandStats(await raw.info("commandstats"));
    expect([stats.multi, (stats.eval ?? 0) + (stats.evalsha ?? 0)]).toEqual([1, 1]);
    await expectStored("ns", [...big, ...small], [], []);
  });

  it("reloads the script when Redis lost it (NOSCRIPT)", async () => {
    await tier.setMany("ns", [{ key: "a", envelope: envelope(bytes("1")), expiresAt: 0 }]);
    await raw.script("FLUSH");
    await raw.config("RESETSTAT");
    const writes = [{ key: "b", envelope: envelope(bytes("2")), expiresAt: 0 }];
    await tier.setMany("ns", writes);
    expect(await raw.info("errorstats")).toMatch(/errorstat_NOSCRIPT:count=1/);
    expect(await raw.getBuffer(redisKey(PREFIX, "ns", "b"))).toEqual(Buffer.from(writes[0]!.envelope));
  });

  it("writes nothing and rejects when Redis is out of memory, by script and by MULTI/EXEC", async () => {
    const writes = adversarialBatch(Date.now()).writes;
    await raw.config("SET", "maxmemory-policy", "noeviction");
    await raw.config("SET", "maxmemory", "1");
    try {
      await expect(tier.setMany("ns", writes)).rejects.toBeInstanceOf(TierUnavailableError);
      await expect(tier.setMany("ns", [...writes, oversized()])).rejects.toBeInstanceOf(TierUnavailableError);
    } finally {
      await raw.config("SET", "maxmemory", "0");
    }
    expect(await raw.dbsize()).toBe(0);
  });
});
