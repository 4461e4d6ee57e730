import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { CacheClient, RpcError, Status } from "../../client/index.js";
import { latencyProbe, mib, startServerChild, type ServerChild } from "../helpers/server-child.js";

/**
 * Legal requests that used to exhaust or stall the server (issue #12), each
 * against a real server process: RSS growth stays within the configured
 * budget plus a stated fixed overhead, and a concurrent Get probe never
 * misses its deadline.
 */
const BUDGET = 64 * 1024 ** 2;
/** What the runtime may add over the budget: V8 heap growth, allocator slack, call buffers. */
const FIXED_OVERHEAD = 96 * 1024 ** 2;

let server: ServerChild | undefined;
const clients: CacheClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server?.stop();
  server = undefined;
});

function client(options: { token?: string; namespace?: string } = {}): CacheClient {
  const c = new CacheClient({ address: server!.address, timeoutMs: 30_000, ...options });
  clients.push(c);
  return c;
}

describe("a server bounded as a whole", () => {
  it("keeps RSS within --max-memory across 200 namespaces of 1 KiB values", async () => {
    server = await startServerChild(["--storage", "memory", "--max-memory", `${BUDGET}`]);
    const c = client();
    const before = await server.memory();
    for (let ns = 0; ns < 200; ns++) {
      const entries = Array.from({ length: 1000 }, (_, i) => [`k${i}`, randomBytes(1024)] as const);
      await c.setMany(entries, { namespace: `ns${ns}` });
    }
    const after = await server.memory();
    const [stats] = await c.stats({ namespace: "ns199" });
    console.log(`budget: 200 namespaces × 1000 × 1 KiB (${mib(200 * 1000 * 1024)} written): rss ${mib(before.rss)} -> ${mib(after.rss)}; entries held in ns199 ${stats?.tiers[0]?.entries}`);
    expect(after.rss - before.rss).toBeLessThan(BUDGET + FIXED_OVERHEAD);
  }, 120_000);

  it("counts keys: 1,000-byte keys with 1-byte values stay within --max-memory", async () => {
    server = await startServerChild(["--storage", "memory", "--max-memory", `${BUDGET}`, "--max-key-bytes", "2048"]);
    const c = client();
    const before = await server.memory();
    const pad = "k".repeat(1000);
    for (let batch = 0; batch < 200; batch++) {
      await c.setMany(Array.from({ length: 1000 }, (_, i) => [`${pad}${batch}:${i}`, 1] as const), { namespace: "keys" });
    }
    const after = await server.memory();
    console.log(`keys: 200,000 keys of 1,000 bytes: rss ${mib(before.rss)} -> ${mib(after.rss)}, heap ${mib(before.heap)} -> ${mib(after.heap)}`);
    expect(after.rss - before.rss).toBeLessThan(BUDGET + FIXED_OVERHEAD);
  }, 120_000);

  it("answers a GetMany of values that would decompress past the message limit with RESOURCE_EXHAUSTED, at once; StreamGet splits them", async () => {
    server = await startServerChild(["--storage", "memory", "--max-memory", "1GiB"]);
    const c = client({ namespace: "zeros" });
    const zeros = Buffer.alloc(1024 * 1024);
    const keys = Array.from({ length: 200 }, (_, i) => `z${i}`);
    for (let i = 0; i < keys.length; i += 10) await c.setMany(keys.slice(i, i + 10).map((k) => [k, zeros] as const));
    await c.set("probe", 1, { namespace: "probe" });
    const before = await server.memory();

    const probe = latencyProbe(() => c.get("probe", { namespace: "probe", timeoutMs: 1000 }));
    const err = await c.getMany(keys).catch((e: unknown) => e);
    let streamed = 0;
    for await (const [, value] of c.streamGet(keys, { batchSize: 200 })) if ((value as Buffer).byteLength === zeros.byteLength) streamed++;
    const { count, p99, max, failed } = await probe.stop();
    const after = await server.memory();

    console.log(`zeros: 200 × 1 MiB (stored compressed): GetMany -> ${RpcError.is(err, Status.RESOURCE_EXHAUSTED) ? "RESOURCE_EXHAUSTED" : String(err)}; StreamGet ${streamed} values; probe ${count} Gets p99 ${p99.toFixed(1)} ms max ${max.toFixed(1)} ms, ${failed} failed; rss ${mib(before.rss)} -> ${mib(after.rss)}`);
    expect(RpcError.is(err, Status.RESOURCE_EXHAUSTED)).toBe(true);
    expect((err as RpcError).details).toMatch(/max-message-bytes/);
    expect(streamed).toBe(200);
    expect(failed).toBe(0);
    expect(after.rss - before.rss).toBeLessThan(FIXED_OVERHEAD);
  }, 120_000);

  it("lets no read-only caller lock other tenants out of new namespaces", async () => {
    const tokens = [
      { token: "reader-token-0123456789abcdef", namespaces: ["team-b.*"], rights: ["read"] },
      { token: "admin-token-0123456789abcdef", namespaces: ["*"], rights: ["read", "write", "admin"] },
    ];
    server = await startServerChild(["--storage", "lmdb", "--data-dir", `${process.env.TMPDIR ?? "/tmp"}/tiercache-bounds-${process.pid}-${Date.now()}`, "--max-namespaces", "100"], {
      TIERCACHE_TOKENS: JSON.stringify(tokens),
    });
    const reader = client({ token: tokens[0]!.token });
    const admin = client({ token: tokens[1]!.token });
    for (let i = 0; i < 3000; i++) {
      const namespace = `team-b.n${i}`;
      expect(await reader.get("k", { namespace })).toBeUndefined();
      expect(await reader.has("k", { namespace })).toBe(false);
    }
    for (let i = 0; i < 100; i++) await admin.set("k", i, { namespace: `team-a.n${i}` });
    const err = await admin.set("k", 1, { namespace: "team-a.one-too-many" }).catch((e: unknown) => e);
    expect(RpcError.is(err, Status.RESOURCE_EXHAUSTED)).toBe(true);
    await admin.clear({ namespace: "team-a.n0" });
    await admin.set("k", 1, { namespace: "team-a.one-too-many" });
  }, 120_000);
});
