import { credentials } from "@grpc/grpc-js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheClient, RpcError, Status } from "../../client/index.js";
import { createClient, type ServiceClient } from "../../core/grpc-adapter.js";
import { METHOD_POLICIES, type CacheMethod } from "../../core/method-policy.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { mib, startServerChild, type ServerChild } from "../helpers/server-child.js";

/**
 * A soak of legal requests mixing the heavy shapes that used to exhaust or
 * stall the server (issue #12) with ordinary ones, against one server
 * process under one memory budget: every answer is OK or a status its
 * method declares (core/method-policy.ts), never INTERNAL or UNKNOWN, and
 * RSS stays within the budget plus a stated fixed overhead.
 */
const REQUESTS = Number(process.env.TIERCACHE_SOAK_REQUESTS ?? 5_000);
const BUDGET = 64 * 1024 ** 2;
/** Runtime and allocator overhead over the budget, plus responses being decoded and sent (two 16 MiB messages at once, each held about three times: values, encoded message, transport buffers). */
const FIXED_OVERHEAD = 160 * 1024 ** 2;

type Shape =
  | { kind: "set"; ns: number; key: number; size: number; zeros: boolean }
  | { kind: "get" | "has" | "delete" | "touch"; ns: number; key: number }
  | { kind: "getMany"; ns: number; keys: number }
  | { kind: "streamGet"; ns: number; keys: number }
  | { kind: "deleteMissing"; ns: number; count: number }
  | { kind: "longKeys"; ns: number; count: number }
  | { kind: "watch"; namespaces: number }
  | { kind: "lease"; ns: number; key: number }
  | { kind: "clear"; ns: number }
  | { kind: "stats"; ns: number };

const nsArb = fc.integer({ min: 0, max: 400 });
const keyArb = fc.integer({ min: 0, max: 300 });
const shapeArb: fc.Arbitrary<Shape> = fc.oneof(
  { weight: 20, arbitrary: fc.record({ kind: fc.constant("set" as const), ns: nsArb, key: keyArb, size: fc.oneof(fc.integer({ min: 0, max: 2048 }), fc.constant(1024 * 1024)), zeros: fc.boolean() }) },
  { weight: 20, arbitrary: fc.record({ kind: fc.constantFrom("get" as const, "has" as const, "delete" as const, "touch" as const), ns: nsArb, key: keyArb }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("getMany" as const), ns: nsArb, keys: fc.integer({ min: 1, max: 1000 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("streamGet" as const), ns: nsArb, keys: fc.integer({ min: 1, max: 1000 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("deleteMissing" as const), ns: fc.integer({ min: 0, max: 5000 }), count: fc.integer({ min: 1, max: 1000 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("longKeys" as const), ns: nsArb, count: fc.integer({ min: 1, max: 500 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("watch" as const), namespaces: fc.integer({ min: 1, max: 1200 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("lease" as const), ns: nsArb, key: fc.integer({ min: 0, max: 1_000_000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("clear" as const), ns: nsArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("stats" as const), ns: nsArb }) },
);

/** The method a shape calls, for the status check. */
const METHOD: Record<Shape["kind"], CacheMethod> = {
  set: "set", get: "get", has: "has", delete: "delete", touch: "touch", getMany: "getMany", streamGet: "streamGet",
  deleteMissing: "deleteMany", longKeys: "setMany", watch: "watch", lease: "getOrLease", clear: "clear", stats: "stats",
};

describe("soak: heavy and ordinary legal requests under one memory budget", () => {
  let server: ServerChild;
  let client: CacheClient;
  let raw: ServiceClient<typeof CacheService>;
  beforeAll(async () => {
    server = await startServerChild(["--storage", "memory", "--max-memory", `${BUDGET}`, "--max-key-bytes", "2048", "--max-namespaces", "300"]);
    client = new CacheClient({ address: server.address, timeoutMs: 20_000, retryReads: false });
    raw = createClient(CacheService, server.address, credentials.createInsecure(), { defaultTimeoutMs: 20_000 });
  }, 60_000);
  afterAll(async () => {
    client?.close();
    raw?.close();
    await server?.stop();
  });

  async function run(shape: Shape): Promise<void> {
    const namespace = `soak${"ns" in shape ? shape.ns : 0}`;
    switch (shape.kind) {
      case "set":
        return void (await client.set(`k${shape.key}`, shape.zeros ? Buffer.alloc(shape.size) : Buffer.alloc(shape.size, shape.key), { namespace, ttl: 600_000 }));
      case "get":
        return void (await client.get(`k${shape.key}`, { namespace }));
      case "has":
        return void (await client.has(`k${shape.key}`, { namespace }));
      case "delete":
        return void (await client.delete(`k${shape.key}`, { namespace }));
      case "touch":
        return void (await client.touch(`k${shape.key}`, { namespace, ttl: 60_000 }));
      case "getMany":
        return void (await client.getMany(Array.from({ length: shape.keys }, (_, i) => `k${i}`), { namespace }));
      case "streamGet":
        for await (const _ of client.streamGet(Array.from({ length: shape.keys }, (_, i) => `k${i}`), { namespace, batchSize: 1000 })) void _;
        return;
      case "deleteMissing":
        return void (await client.deleteMany(Array.from({ length: shape.count }, (_, i) => `never-${i}-${Math.random()}`), { namespace }));
      case "longKeys":
        return void (await client.setMany(Array.from({ length: shape.count }, (_, i) => [`${"L".repeat(1900)}${i}`, i] as const), { namespace }));
      case "watch": {
        const controller = new AbortController();
        const cursors = Array.from({ length: shape.namespaces }, (_, i) => ({ namespace: `soak${i}`, streamId: "", afterSeq: 0n }));
        try {
          for await (const event of raw.watch({ cursors }, { signal: controller.signal, deadline: Infinity })) {
            if (event.namespace !== "") break; // the first READY (or a refusal) is enough
          }
        } finally {
          controller.abort();
        }
        return;
      }
      case "lease":
        return void (await raw.getOrLease({ namespace, key: `lease${shape.key}`, leaseMs: 600_000, waitMs: 0 }));
      case "clear":
        return void (await client.clear({ namespace }));
      case "stats":
        return void (await client.stats({ namespace }));
    }
  }

  it(`answers ${REQUESTS} requests with declared statuses and keeps RSS within --max-memory plus ${mib(FIXED_OVERHEAD)}`, async () => {
    const before = await server.memory();
    const statuses = new Map<string, number>();
    const shapes = fc.sample(shapeArb, { numRuns: REQUESTS, seed: Number(process.env.TIERCACHE_SOAK_SEED ?? 42) });
    const started = performance.now();
    let peak = before.rss;
    for (let i = 0; i < shapes.length; i += 8) {
      const batch = shapes.slice(i, i + 8);
      const answers = await Promise.all(batch.map((shape) => run(shape).then(() => Status.OK, (err: unknown) => err)));
      answers.forEach((answer, j) => {
        const shape = batch[j]!;
        const code = answer === Status.OK ? Status.OK : RpcError.is(answer) ? answer.code : undefined;
        const name = code === undefined ? `thrown: ${String(answer)}` : Status[code];
        statuses.set(name, (statuses.get(name) ?? 0) + 1);
        if (code === undefined) throw new Error(`${shape.kind}: not an RpcError: ${String(answer)}`);
        if (code !== Status.OK && !METHOD_POLICIES[METHOD[shape.kind]].statuses.includes(code)) {
          throw new Error(`${shape.kind}: undeclared status ${Status[code]}: ${(answer as RpcError).details}`);
        }
      });
      if (i % 2000 === 0) peak = Math.max(peak, (await server.memory()).rss);
      if (server.exited()) throw new Error(`the server died: ${server.stderr()}`);
    }
    const after = await server.memory();
    peak = Math.max(peak, after.rss);
    const byStatus = [...statuses].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(" ");
    console.log(`soak: ${shapes.length} requests in ${((performance.now() - started) / 1000).toFixed(1)} s; ${byStatus}; rss ${mib(before.rss)} -> ${mib(after.rss)} (peak ${mib(peak)})`);
    expect(statuses.has("INTERNAL")).toBe(false);
    expect(statuses.has("UNKNOWN")).toBe(false);
    expect(peak - before.rss).toBeLessThan(BUDGET + FIXED_OVERHEAD);
  }, 600_000);
});
