import { Client as GrpcClient, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { CacheClient } from "../../client/index.js";
import { LeaseSession } from "../../client/lease-session.js";
import { PushQueue } from "../../client/push-queue.js";
import { createClient, type ServiceClient } from "../../core/grpc-adapter.js";
import { RpcError, statusName } from "../../core/rpc-error.js";
import { CacheService, type LeaseSessionRequestSchema, type LeaseSessionResponse } from "../../gen/tiercache/v1/cache_pb.js";
import { parseTokens } from "../../server/security/tokens.js";
import { waiterBehindHeldLease } from "../helpers/lease-waiter.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";
import { listeningAddress, runTiercache, type TiercacheProcess } from "../helpers/tiercache-process.js";
import { rawLeaseTransport } from "../helpers/raw-lease-transport.js";

type Raw = ServiceClient<typeof CacheService>;
type RequestInit = MessageInitShape<typeof LeaseSessionRequestSchema>;

/** An open raw LeaseSession: answers by id as they come, and how the stream ended. */
class Session {
  readonly requests = new PushQueue<RequestInit>();
  readonly answers = new Map<bigint, LeaseSessionResponse>();
  ready: number | undefined;
  readonly ended: Promise<string>;
  #waiters: (() => void)[] = [];

  constructor(client: Raw, metadata?: Metadata, signal?: AbortSignal) {
    const responses = client.leaseSession(this.requests, { deadline: Infinity, ...(metadata && { metadata }), ...(signal && { signal }) });
    this.ended = (async () => {
      try {
        for await (const response of responses) {
          if (response.result.case === "ready") this.ready = response.result.value.maxInFlight;
          else this.answers.set(response.id, response);
          for (const wake of this.#waiters.splice(0)) wake();
        }
        return "OK";
      } catch (err) {
        return err instanceof RpcError ? `${statusName(err.code)}: ${err.details}` : `thrown ${String(err)}`;
      } finally {
        for (const wake of this.#waiters.splice(0)) wake();
      }
    })();
  }

  /** The answer to call `id`, as `case` or `STATUS: message`. */
  async answer(id: bigint): Promise<string> {
    for (;;) {
      const response = this.answers.get(id);
      if (response) {
        const { result } = response;
        return result.case === "error" ? `${statusName(result.value.code)}: ${result.value.message}` : String(result.case);
      }
      const ended = await Promise.race([this.ended.then((how) => `stream ended ${how}`), new Promise<undefined>((resolve) => this.#waiters.push(() => resolve(undefined)))]);
      if (ended !== undefined && !this.answers.has(id)) return ended;
    }
  }

  getOrLease(id: number, value: { namespace: string; key: string; leaseMs?: number; waitMs?: number }, timeoutMs = 0): bigint {
    this.requests.push({ id: BigInt(id), timeoutMs, call: { case: "getOrLease", value: { leaseMs: 10_000, ...value } } });
    return BigInt(id);
  }
}

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

function auth(token: string): Metadata {
  const metadata = new Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

describe("LeaseSession against a server", () => {
  const servers: TestServer[] = [];
  const raws: Raw[] = [];
  const rawClient = (t: TestServer) => {
    const raw = createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 5000 });
    raws.push(raw);
    return raw;
  };
  afterAll(async () => {
    for (const raw of raws) raw.close();
    for (const t of servers) await t.dispose();
  });

  it("cuts a call it carries at --max-deadline with DEADLINE_EXCEEDED, whatever timeout_ms it names, while the stream goes on", async () => {
    const t = await startTestServer({ storage: "memory", maxDeadlineMs: 300 });
    servers.push(t);
    const session = new Session(rawClient(t));
    const held = session.getOrLease(1, { namespace: "md", key: "held" });
    expect(await session.answer(held)).toBe("getOrLease");
    expect(session.answers.get(held)!.result.value).toMatchObject({ found: false, leaseToken: expect.stringMatching(/.+/) });
    // Both wait for the lease held above far longer than the server allows a call.
    const noTimeout = session.getOrLease(2, { namespace: "md", key: "held", waitMs: 20_000 }, 0);
    const longTimeout = session.getOrLease(3, { namespace: "md", key: "held", waitMs: 20_000 }, 60_000);
    expect(await session.answer(noTimeout)).toMatch(/^DEADLINE_EXCEEDED/);
    expect(await session.answer(longTimeout)).toMatch(/^DEADLINE_EXCEEDED/);
    // The stream has outlived --max-deadline and still runs calls.
    const after = session.getOrLease(4, { namespace: "md", key: "other" });
    expect(await session.answer(after)).toBe("getOrLease");
    expect(session.ready).toBe(64);
    session.requests.end();
    expect(await session.ended).toBe("OK");
  });

  it("tells, unary and in a session, each namespace's TTL jitter in parts per million, rounded up (0 without jitter)", async () => {
    const namespaces = new Map([
      ["tenth", { ttlJitter: 0.1 }],
      ["third", { ttlJitter: 1 / 3 }],
      ["whole", { ttlJitter: 1 }],
    ]);
    const t = await startTestServer({ storage: "memory", namespaces });
    servers.push(t);
    const raw = rawClient(t);
    const session = new Session(raw);
    const told: Record<string, [number, number]> = {};
    let id = 0;
    for (const namespace of ["tenth", "third", "whole", "plain"]) {
      const unary = await raw.getOrLease({ namespace, key: "k", leaseMs: 1000 });
      const asked = session.getOrLease(++id, { namespace, key: "k" });
      await session.answer(asked);
      const inSession = session.answers.get(asked)!.result.value as { ttlJitterPpm: number };
      told[namespace] = [unary.ttlJitterPpm, inSession.ttlJitterPpm];
    }
    expect(told).toEqual({ tenth: [100_000, 100_000], third: [333_334, 333_334], whole: [1_000_000, 1_000_000], plain: [0, 0] });
    session.requests.end();
    expect(await session.ended).toBe("OK");
  });

  it("holds a Set it carries to the token's quota exactly as a unary Set", async () => {
    const TENANT = "tenant-token-0123456789abcdef";
    const tokens = parseTokens(JSON.stringify([{ token: TENANT, namespaces: ["a.*"], rights: ["read", "write", "admin"], maxNamespaces: 1 }]));
    const t = await startTestServer({ storage: "memory", tokens });
    servers.push(t);
    const raw = rawClient(t);
    const session = new Session(raw, auth(TENANT));
    const set = (id: number, namespace: string) => {
      session.requests.push({ id: BigInt(id), call: { case: "set", value: { namespace, key: "k", value: json(id), contentType: "application/json" } } });
      return session.answer(BigInt(id));
    };
    const unarySet = (namespace: string) =>
      raw.set({ namespace, key: "k", value: json(0), contentType: "application/json" }, { metadata: auth(TENANT) }).then(
        () => "set",
        (err: unknown) => (err instanceof RpcError ? `${statusName(err.code)}: ${err.details}` : String(err)),
      );
    expect(await set(1, "a.first")).toBe("set"); // the token's one namespace, taken by a Set the session carries
    const unaryRefusal = await unarySet("a.second");
    expect(unaryRefusal).toMatch(/^RESOURCE_EXHAUSTED: .*quota of token #/);
    expect(await set(2, "a.third")).toBe(unaryRefusal.replace("a.second", "a.third"));
    expect(await unarySet("a.first")).toBe("set");
    session.requests.end();
    expect(await session.ended).toBe("OK");
  });

  it("ends open sessions when the server stops gracefully, answering the calls they carry, without holding the shutdown", async () => {
    const t = await startTestServer({ storage: "memory", shutdownGraceMs: 20_000 });
    const raw = rawClient(t);
    const idle = new Session(raw);
    expect(await idle.answer(idle.getOrLease(1, { namespace: "stop", key: "a" }))).toBe("getOrLease");
    const busy = new Session(raw);
    expect(await busy.answer(busy.getOrLease(1, { namespace: "stop", key: "b", leaseMs: 300 }))).toBe("getOrLease");
    const waiting = busy.getOrLease(2, { namespace: "stop", key: "b", waitMs: 2_000 }); // waits for the lease until it lapses
    expect(await busy.answer(busy.getOrLease(3, { namespace: "stop", key: "c" }))).toBe("getOrLease"); // so the server has read call 2
    expect(busy.answers.has(waiting)).toBe(false);
    let stoppedWithin = false;
    const stopped = t.stop().then(() => (stoppedWithin = true));
    // Neither client ends its side: the server ends both streams, OK, once their calls are answered.
    expect(await idle.ended).toBe("OK");
    expect(await busy.answer(waiting)).toBe("getOrLease");
    expect(await busy.ended).toBe("OK");
    await stopped;
    expect(stoppedWithin).toBe(true);
    await t.dispose();
  });

  it("a Set that opens the stream is held until READY, then sent on it, or sent unary when it could exceed the server's message limit", async () => {
    const t = await startTestServer({ storage: "memory", maxValueBytes: 16 * 1024, maxKeyBytes: 8 * 1024, maxMessageBytes: 26 * 1024 });
    servers.push(t);
    const raw = rawClient(t);
    const opened: number[] = [];
    const unary: string[] = [];
    const session = new LeaseSession({
      open: (requests, options) => (opened.push(opened.length), raw.leaseSession(requests, options)),
      unary: {
        getOrLease: (r, o) => raw.getOrLease(r, o),
        set: (r, o) => (unary.push(r.key ?? ""), raw.set(r, o)),
        releaseLease: (r, o) => raw.releaseLease(r, o),
      },
      callOptions: () => ({}),
    });
    const set = (key: string, bytes: number) => session.call("set", { namespace: "first", key, value: new Uint8Array(bytes), contentType: "application/octet-stream" }, 5000);
    const near = "k".repeat(4000);
    const [smallSet, nearSet] = await Promise.all([set("small", 100), set(near, 16 * 1024)]);
    expect(smallSet).toBeDefined();
    expect(nearSet).toBeDefined();
    expect(opened).toEqual([0]);
    expect(unary).toEqual([near]); // 16 KiB of value and 4,000 key characters could pass 26 KiB: unary, once READY told the limit
    expect((await raw.get({ namespace: "first", key: "small" })).found).toBe(true);
    expect((await raw.get({ namespace: "first", key: near })).found).toBe(true);
    session.close();
  });

  it("a wrap's value over the server's message limit fails its own write only, as a unary Set would, not the other calls of the client's session", async () => {
    const t = await startTestServer({ storage: "memory", maxValueBytes: 100 * 1024, maxMessageBytes: 128 * 1024 });
    servers.push(t);
    const errors: unknown[] = [];
    const c = t.newClient({ onBackgroundError: (error) => errors.push(error) });
    const holder = t.newClient();
    const behind = await waiterBehindHeldLease(holder, c, "big");
    const big = "x".repeat(200 * 1024);
    expect(await c.wrap("big", async () => big, { namespace: "big", ttl: 60_000 })).toBe(big);
    await c.settled();
    expect(errors.map((err) => (err instanceof RpcError ? statusName(err.code) : String(err)))).toEqual(["RESOURCE_EXHAUSTED"]);
    expect(await behind.release()).toEqual({ held: "holder's value", waited: "holder's value", waiterLoads: 0 });
  });

  it("a value too large for the client to read fails that wrap's own GetOrLease, not the other calls of its session, when the server's limit is above the client's", async () => {
    const t = await startTestServer({ storage: "memory", maxValueBytes: 1536 * 1024, maxMessageBytes: 2 * 1024 * 1024 });
    servers.push(t);
    const writer = t.newClient({ maxReceiveMessageBytes: 4 * 1024 * 1024 });
    const huge = "x".repeat(1200 * 1024);
    await writer.set("huge", huge, { namespace: "recv", ttl: 60_000 });
    const c = t.newClient({ maxReceiveMessageBytes: 1024 * 1024 });
    const holder = t.newClient();
    const behind = await waiterBehindHeldLease(holder, c, "recv");
    const read = await c.wrap("huge", async () => "loaded", { namespace: "recv", ttl: 60_000 }).then(
      (value) => (value === huge ? "the stored value" : String(value)),
      (err: unknown) => (err instanceof RpcError ? statusName(err.code) : String(err)),
    );
    expect(read).toBe("RESOURCE_EXHAUSTED");
    expect(await behind.release()).toEqual({ held: "holder's value", waited: "holder's value", waiterLoads: 0 });
    for (const client of [writer, c, holder]) client.close();
  });

  it("fails the stream with INVALID_ARGUMENT when a message is not a LeaseSessionRequest", async () => {
    const t = await startTestServer({ storage: "memory" });
    servers.push(t);
    const grpc = new GrpcClient(t.server.address, credentials.createInsecure());
    try {
      const call = grpc.makeBidiStreamRequest<Buffer, Buffer>("/tiercache.v1.CacheService/LeaseSession", (b) => b, (b) => b);
      const received: Buffer[] = [];
      call.on("data", (b: Buffer) => received.push(b));
      const status = new Promise<{ code: number; details: string }>((resolve) => {
        call.on("error", (err: ServiceError) => resolve({ code: err.code, details: err.details }));
        call.on("status", (s: { code: number; details: string }) => resolve(s));
      });
      call.write(Buffer.from([0x1a, 0x05, 0x01])); // field 3 (get_or_lease) of 5 bytes, cut after one
      const { code, details } = await status;
      expect(statusName(code)).toBe("INVALID_ARGUMENT");
      expect(details).toMatch(/malformed tiercache\.v1\.LeaseSessionRequest/);
      expect(received).toHaveLength(1); // READY only
    } finally {
      grpc.close();
    }
  });
});

describe("LeaseSession when the server's session calls are all taken (1,024 held by another client's lease waits)", () => {
  let t: TestServer;
  let raw: Raw;
  const attack = new AbortController();
  afterAll(async () => {
    attack.abort();
    raw?.close();
    await t?.dispose();
  });

  it("a client's calls go unary at once: a wrap of a cached key returns the cached value, and a Set the server did not run never lands after a later write", async () => {
    t = await startTestServer({ storage: "memory" });
    raw = createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
    const holder = new Session(raw, undefined, attack.signal);
    expect(await holder.answer(holder.getOrLease(1, { namespace: "starve", key: "hot" }))).toBe("getOrLease");
    const attackers = Array.from({ length: 16 }, () => new Session(raw, undefined, attack.signal));
    for (const [s, session] of attackers.entries()) for (let i = 1; i <= 64; i++) session.getOrLease(s * 64 + i, { namespace: "starve", key: "hot", waitMs: 60_000 }, 60_000);
    const probe = new Session(raw);
    for (let id = 1; ; id++) {
      const answer = await probe.answer(probe.getOrLease(id, { namespace: "starve", key: `probe${id}` }));
      if (answer.startsWith("RESOURCE_EXHAUSTED")) {
        expect(probe.answers.get(BigInt(id))!.result.value).toMatchObject({ notRun: true, message: expect.stringMatching(/^not run: .*1024 LeaseSession calls are all taken; send it as the unary GetOrLease call/) });
        break;
      }
      expect(answer).toBe("getOrLease");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    const victim = t.newClient();
    await victim.set("cached", "cached value", { namespace: "starve", ttl: 60_000 });
    let loads = 0;
    const wrapped = await victim.wrap("cached", async () => (loads++, "loaded"), { namespace: "starve", ttl: 60_000 });
    expect({ wrapped, loads }).toEqual({ wrapped: "cached value", loads: 0 });

    // A Set carried by a session, with a short deadline: it must either have run by the time it is answered, or never run.
    const session = new LeaseSession(rawLeaseTransport(raw));
    const first = await session.call("set", { namespace: "starve", key: "w", value: json("first"), contentType: "application/json" }, 300).then(
      () => "set",
      (err: unknown) => (err instanceof RpcError ? statusName(err.code) : String(err)),
    );
    expect(first).toBe("set");
    await raw.set({ namespace: "starve", key: "w", value: json("second"), contentType: "application/json" });
    attack.abort(); // the 1,024 calls end: whatever the session still holds may run now
    for (;;) {
      const answer = await session.call("getOrLease", { namespace: "starve", key: "after", leaseMs: 1000 }, 5000).then(() => "ok", (err: unknown) => String(err));
      if (answer === "ok") break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stored = await raw.get({ namespace: "starve", key: "w" });
    expect(new TextDecoder().decode(stored.value)).toBe(JSON.stringify("second"));
    session.close();
    probe.requests.end();
    victim.close();
  });
});

describe("wrap over LeaseSession against a server killed with SIGKILL mid-load", () => {
  let server: TiercacheProcess | undefined;
  let client: CacheClient | undefined;
  afterEach(async () => {
    client?.close();
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill("SIGKILL");
      await server.exit;
    }
  });

  it("settles every wrap as with unary calls: each caller gets its loader's value and each lost write is reported UNAVAILABLE", async () => {
    server = runTiercache(["serve", "--port", "0", "--storage", "memory"]);
    const address = await listeningAddress(server);
    const background: unknown[] = [];
    client = new CacheClient({ address, onBackgroundError: (error) => background.push(error) });
    const c = client;
    expect(await c.wrap("warm", async () => "warm", { namespace: "kill", ttl: 60_000 })).toBe("warm");

    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let started = 0;
    const loader = (value: string) => async () => {
      started++;
      await gate;
      return value;
    };
    // 100 keys leased and loading, and 100 more callers of the same keys waiting on the server for the leases.
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    const loading = keys.map((key) => c.wrap(key, loader(`loaded ${key}`), { namespace: "kill", ttl: 60_000 }));
    while (started < keys.length) await new Promise((resolve) => setTimeout(resolve, 10));
    const other = new CacheClient({ address, onBackgroundError: (error) => background.push(error) });
    const waiting = keys.map((key) => other.wrap(key, loader(`waited ${key}`), { namespace: "kill", ttl: 60_000, leaseWaitMs: 20_000 }));
    // And one call over a bare session, to see how a call in flight on the stream ends.
    const raw = createClient(CacheService, address, credentials.createInsecure(), { defaultTimeoutMs: 5000 });
    const session = new LeaseSession(rawLeaseTransport(raw));
    const bare = session.call("getOrLease", { namespace: "kill", key: "k0", leaseMs: 10_000, waitMs: 20_000 }, 25_000).then(
      () => "answered",
      (err: unknown) => (err instanceof RpcError ? `${statusName(err.code)}: ${err.details}` : String(err)),
    );
    await new Promise((resolve) => setTimeout(resolve, 200)); // their GetOrLease calls reach the server and wait there

    server.child.kill("SIGKILL");
    await server.exit;
    expect(await bare).toMatch(/^UNAVAILABLE: .*may or may not have taken effect/);
    session.close();
    raw.close();
    open();
    expect(await Promise.all(loading)).toEqual(keys.map((key) => `loaded ${key}`));
    expect(await Promise.all(waiting)).toEqual(keys.map((key) => `waited ${key}`));
    await c.settled();
    await other.settled();
    other.close();
    expect(background.length).toBeGreaterThan(0);
    expect(background.map((err) => (err instanceof RpcError ? statusName(err.code) : String(err)))).toEqual(background.map(() => "UNAVAILABLE"));
    expect(c.wrapStats().writeFailures).toBe(keys.length);
    // A call after the kill fails fast as a unary call would, and the loader still answers.
    expect(await c.wrap("after", async () => "after", { namespace: "kill", ttl: 60_000 })).toBe("after");
  });
});
