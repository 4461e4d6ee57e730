import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RpcError, Status } from "../../client/index.js";
import { tracingOn } from "../../core/rpc-tracing.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const exporter = new InMemorySpanExporter();
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  expect(tracingOn()).toBe(false);
  context.setGlobalContextManager(contextManager.enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  expect(tracingOn()).toBe(true);
});
afterAll(() => {
  trace.disable();
  propagation.disable();
  context.disable();
});
beforeEach(() => exporter.reset());

const spans = () => exporter.getFinishedSpans();
const only = (predicate: (span: ReadableSpan) => boolean, what: string): ReadableSpan => {
  const found = spans().filter(predicate);
  expect(found, `${what} among ${spans().map((s) => s.name).join(", ")}`).toHaveLength(1);
  return found[0]!;
};
const rpcSpan = (method: string, kind: SpanKind) => only((s) => s.name === `tiercache.v1.CacheService/${method}` && s.kind === kind, `${SpanKind[kind]} span of ${method}`);
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

/** The client span of `method` parents its server span, which parents the durable span named `durableName`. */
function expectChain(method: string, durableName: string, system: string): void {
  const client = rpcSpan(method, SpanKind.CLIENT);
  const server = rpcSpan(method, SpanKind.SERVER);
  const durable = only((s) => s.name === durableName, durableName);
  expect(client.attributes).toMatchObject({ "rpc.system": "grpc", "rpc.service": "tiercache.v1.CacheService", "rpc.method": method, "rpc.grpc.status_code": 0 });
  expect(server.attributes).toMatchObject({ "rpc.system": "grpc", "rpc.service": "tiercache.v1.CacheService", "rpc.method": method, "rpc.grpc.status_code": 0 });
  expect(server.spanContext().traceId).toBe(client.spanContext().traceId);
  expect(parentOf(server)).toBe(client.spanContext().spanId);
  expect(durable.spanContext().traceId).toBe(client.spanContext().traceId);
  expect(parentOf(durable)).toBe(server.spanContext().spanId);
  expect(durable.kind).toBe(SpanKind.CLIENT);
  expect(durable.attributes).toMatchObject({ "db.system": system, "tiercache.namespace": "default" });
  expect(client.status.code).toBe(SpanStatusCode.UNSET);
  expect(server.status.code).toBe(SpanStatusCode.UNSET);
}

describe("tracing over LMDB", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ storage: "lmdb" });
  });
  afterAll(async () => {
    await t?.dispose();
  });

  it("a Set is one trace: client span, server span, then the LMDB write", async () => {
    await t.client.set("k", "v");
    expectChain("Set", "lmdb set", "lmdb");
  });

  it("while tracing is on, wrap's GetOrLease and Set are calls of their own, each with its client and server span (not messages of one LeaseSession)", async () => {
    expect(await t.client.wrap("traced", () => "v", { ttl: 60_000 })).toBe("v");
    await t.client.settled();
    rpcSpan("GetOrLease", SpanKind.CLIENT);
    rpcSpan("GetOrLease", SpanKind.SERVER);
    expectChain("Set", "lmdb set", "lmdb");
    expect(spans().filter((s) => s.name.endsWith("/LeaseSession"))).toEqual([]);
  });

  it("a Get that misses memory reads LMDB inside the server span", async () => {
    expect(await t.client.get("absent")).toBeUndefined();
    expectChain("Get", "lmdb get", "lmdb");
  });

  it("a call the server refuses fails both spans with the gRPC code where the conventions say so", async () => {
    const tooLong = "x".repeat(t.config.maxKeyBytes + 1);
    const refused = await t.client.has(tooLong).catch((e: unknown) => e);
    if (!(refused instanceof RpcError)) throw new Error(`expected an RpcError, got ${String(refused)}`);
    expect(refused.code).toBe(Status.INVALID_ARGUMENT);
    const client = rpcSpan("Has", SpanKind.CLIENT);
    const server = rpcSpan("Has", SpanKind.SERVER);
    expect(client.status.code).toBe(SpanStatusCode.ERROR);
    expect(client.attributes["rpc.grpc.status_code"]).toBe(Status.INVALID_ARGUMENT);
    // A client's mistake is not the server's failure (RPC semantic conventions): the code is there, the status unset.
    expect(server.attributes["rpc.grpc.status_code"]).toBe(Status.INVALID_ARGUMENT);
    expect(server.status.code).toBe(SpanStatusCode.UNSET);
    expect(parentOf(server)).toBe(client.spanContext().spanId);
  });

  it("an application span around a call parents the client span", async () => {
    await trace.getTracer("app").startActiveSpan("request", async (root) => {
      await t.client.has("k");
      root.end();
    });
    const root = only((s) => s.name === "request", "application span");
    expect(parentOf(rpcSpan("Has", SpanKind.CLIENT))).toBe(root.spanContext().spanId);
  });
});

describe("tracing over Redis", () => {
  let redis: TestRedis;
  let t: TestServer;
  beforeAll(async () => {
    redis = await startTestRedis();
    t = await startTestServer({ storage: "redis", redisUrl: redis.url, redisTimeoutMs: 200, redisRetries: 0 });
  });
  afterAll(async () => {
    await t?.dispose();
    await redis?.stop();
  });

  it("a Get that misses memory is a Redis span, child of the server span", async () => {
    expect(await t.client.get("absent")).toBeUndefined();
    expectChain("Get", "redis get", "redis");
  });

  it("a Set writes Redis inside the server span", async () => {
    await t.client.set("k", "v");
    expectChain("Set", "redis set", "redis");
  });

  it("with Redis down, the call fails UNAVAILABLE and every span of it says so", async () => {
    await redis.stop(true);
    exporter.reset();
    const err = await t.client.get("another").catch((e: unknown) => e);
    if (!(err instanceof RpcError)) throw new Error(`expected an RpcError, got ${String(err)}`);
    expect(err.code).toBe(Status.UNAVAILABLE);
    const client = rpcSpan("Get", SpanKind.CLIENT);
    expect(client.status.code).toBe(SpanStatusCode.ERROR);
    expect(client.attributes["rpc.grpc.status_code"]).toBe(Status.UNAVAILABLE);
    // The client retries reads that fail UNAVAILABLE: each attempt is a server span under the one client span.
    const servers = spans().filter((s) => s.name === "tiercache.v1.CacheService/Get" && s.kind === SpanKind.SERVER);
    expect(servers.length).toBeGreaterThanOrEqual(1);
    for (const server of servers) {
      expect(parentOf(server)).toBe(client.spanContext().spanId);
      expect(server.status.code).toBe(SpanStatusCode.ERROR);
      expect(server.attributes["rpc.grpc.status_code"]).toBe(Status.UNAVAILABLE);
      const durable = only((s) => s.name === "redis get" && parentOf(s) === server.spanContext().spanId, "redis get of one attempt");
      expect(durable.status.code).toBe(SpanStatusCode.ERROR);
      expect(durable.events.some((e) => e.name === "exception")).toBe(true);
    }
  });
});
