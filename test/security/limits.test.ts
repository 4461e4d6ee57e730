import { credentials, Metadata, Server, ServerCredentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addService, createClient, type Authorizer, type CallContext, type ServiceClient } from "../../core/grpc-adapter.js";
import { RpcError, Status, statusName } from "../../core/rpc-error.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { resolveConfig } from "../../server/config.js";
import { deadlineCeiling } from "../../server/security/limits.js";
import { EchoService } from "../gen/tiercache/test/v1/echo_pb.js";
import { startTestServer } from "../helpers/test-server.js";

async function codeOf(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return "OK";
  } catch (err) {
    if (err instanceof RpcError) return `${statusName(err.code)}: ${err.details}`;
    throw err;
  }
}

/** An async iterable that yields `first`, then waits until `release` is called. */
function held<T>(first: T): { messages: AsyncIterable<T>; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  return {
    messages: (async function* () {
      yield first;
      await gate;
    })(),
    release,
  };
}

describe("the adapter's hooks", () => {
  const server = new Server();
  let client: ServiceClient<typeof EchoService>;
  const contexts: { method: string; deadline: number; aborted: () => boolean }[] = [];
  const seen: string[] = [];

  /** Refuses any message whose text is "forbidden", and calls whose metadata says `deny: yes`. */
  const authorize: Authorizer = (method, request, context) => {
    if (context.metadata.get("deny")[0] === "yes") throw new RpcError(Status.UNAUTHENTICATED, "denied at the door");
    if (request && (request as { text?: string }).text === "forbidden") throw new RpcError(Status.PERMISSION_DENIED, `${method.name}: forbidden`);
  };
  const remember = (method: string, ctx: CallContext) => contexts.push({ method, deadline: ctx.deadline, aborted: () => ctx.signal.aborted });

  beforeAll(async () => {
    addService(
      server,
      EchoService,
      {
        async echo(req, ctx) {
          remember("echo", ctx);
          seen.push(req.text);
          if (req.text === "slow") await new Promise((resolve) => setTimeout(resolve, 2000));
          return { text: req.text };
        },
        async collect(requests, ctx) {
          remember("collect", ctx);
          const parts: string[] = [];
          try {
            for await (const req of requests) parts.push(req.text);
          } catch {
            // A careless handler that swallows errors must not turn a refusal into OK.
          }
          seen.push(...parts);
          return { text: parts.join(",") };
        },
        async *repeat(req) {
          for (let i = 0; i < req.count; i++) yield { text: `${req.text}#${i}` };
        },
        async *chat(requests) {
          for await (const req of requests) {
            seen.push(req.text);
            yield { text: req.text.toUpperCase() };
          }
        },
      },
      { authorize, maxDeadlineMs: (method) => (method.name === "Repeat" ? undefined : 300) },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    client = createClient(EchoService, `127.0.0.1:${port}`, credentials.createInsecure());
  });
  afterAll(() => {
    client.close();
    server.forceShutdown();
  });

  it("authorize runs before the handler sees a message, for every kind of call", async () => {
    const deny = new Metadata();
    deny.set("deny", "yes");
    expect(await codeOf(() => client.echo({ text: "forbidden" }))).toBe("PERMISSION_DENIED: Echo: forbidden");
    expect(await codeOf(() => client.echo({ text: "a" }, { metadata: deny }))).toBe("UNAUTHENTICATED: denied at the door");
    expect(await codeOf(() => client.collect([], { metadata: deny }))).toBe("UNAUTHENTICATED: denied at the door");
    expect(await codeOf(async () => { for await (const _ of client.repeat({ text: "forbidden", count: 1 })); })).toBe("PERMISSION_DENIED: Repeat: forbidden");
    const replies: string[] = [];
    const chat = codeOf(async () => {
      for await (const reply of client.chat([{ text: "one" }, { text: "forbidden" }, { text: "three" }])) replies.push(reply.text);
    });
    expect(await chat).toBe("PERMISSION_DENIED: Chat: forbidden");
    expect(replies).toEqual(["ONE"]);
    expect(seen).not.toContain("forbidden");
    expect(seen).not.toContain("three");
  });

  it("a stream refused mid-way fails even when the handler swallows the error", async () => {
    expect(await codeOf(() => client.collect([{ text: "x" }, { text: "forbidden" }]))).toBe("PERMISSION_DENIED: Collect: forbidden");
  });

  it("caps the deadline: the context says so, the signal aborts, and the client gets DEADLINE_EXCEEDED", async () => {
    contexts.length = 0;
    const started = Date.now();
    expect(await codeOf(() => client.echo({ text: "slow" }))).toBe("DEADLINE_EXCEEDED: deadline exceeded: calls may take at most max-deadline (300 ms)");
    expect(Date.now() - started).toBeLessThan(1500);
    const [ctx] = contexts;
    expect(ctx!.deadline).toBeGreaterThanOrEqual(started + 250);
    expect(ctx!.deadline).toBeLessThanOrEqual(started + 400);
    expect(ctx!.aborted()).toBe(true);

    const stream = held({ text: "a" });
    const collect = codeOf(() => client.collect(stream.messages));
    expect(await collect).toMatch(/^DEADLINE_EXCEEDED: .*max-deadline \(300 ms\)/);
    stream.release();
  });

  it("keeps an earlier client deadline, and no ceiling where the function gives none", async () => {
    contexts.length = 0;
    const before = Date.now();
    expect(await codeOf(() => client.echo({ text: "fast" }, { timeoutMs: 100 }))).toBe("OK");
    expect(contexts[0]!.deadline).toBeLessThanOrEqual(before + 150);
    const texts: string[] = [];
    for await (const reply of client.repeat({ text: "r", count: 3 })) texts.push(reply.text);
    expect(texts).toEqual(["r#0", "r#1", "r#2"]);
  });

  it("refuses a ceiling a timer cannot hold", () => {
    const impl = { echo: () => ({}), collect: async () => ({}), repeat: async function* () {}, chat: async function* () {} };
    expect(() => addService(new Server(), EchoService, impl, { maxDeadlineMs: 2 ** 31 })).toThrow(RangeError);
    expect(() => addService(new Server(), EchoService, impl, { maxDeadlineMs: 0 })).toThrow(RangeError);
  });
});

describe("server limits", () => {
  it("--max-deadline and --max-concurrent-streams resolve with defaults, and neither Watch nor LeaseSession is cut (LeaseSession cuts each call it carries instead)", () => {
    expect(resolveConfig([], {})).toMatchObject({ maxDeadlineMs: 60_000, maxConcurrentStreams: 100 });
    expect(resolveConfig(["--max-deadline", "5s", "--max-concurrent-streams", "8"], {})).toMatchObject({ maxDeadlineMs: 5000, maxConcurrentStreams: 8 });
    expect(() => resolveConfig(["--max-deadline", "30d"], {})).toThrow(/expected a duration from 1ms to 24d/);
    expect(() => resolveConfig(["--max-concurrent-streams", "0"], {})).toThrow(/--max-concurrent-streams/);
    const ceiling = deadlineCeiling(5000);
    expect(CacheService.methods.map((m) => [m.name, ceiling(m)]).filter(([, ms]) => ms !== 5000)).toEqual([
      ["Watch", undefined],
      ["LeaseSession", undefined],
    ]);
  });

  it("cuts a call that outlives --max-deadline with DEADLINE_EXCEEDED naming the limit", async () => {
    const t = await startTestServer({ storage: "memory", maxDeadlineMs: 300 });
    try {
      const client = createClient(CacheService, t.server.address, credentials.createInsecure());
      const stream = held({ namespace: "a", entries: [{ key: "k", value: new Uint8Array([1]) }] });
      const started = Date.now();
      expect(await codeOf(() => client.streamSet(stream.messages))).toMatch(/^DEADLINE_EXCEEDED: .*max-deadline \(300 ms\)/);
      expect(Date.now() - started).toBeLessThan(2000);
      stream.release();
      expect(await codeOf(() => client.get({ namespace: "a", key: "k" }))).toBe("OK"); // the server goes on
      client.close();
    } finally {
      await t.dispose();
    }
  });

  it("runs at most --max-concurrent-streams calls at once per connection; the client queues the rest", async () => {
    const t = await startTestServer({ storage: "memory", maxConcurrentStreams: 2 });
    try {
      const client = createClient(CacheService, t.server.address, credentials.createInsecure());
      // Another connection, to look at the server while the first one is full.
      const observer = createClient(CacheService, t.server.address, credentials.createInsecure(), { channelOptions: { "grpc.use_local_subchannel_pool": 1 } });
      await client.get({ key: "warm-up" });
      const streams = [0, 1, 2].map((i) => held({ namespace: "a", entries: [{ key: `k${i}`, value: new Uint8Array([i]) }] }));
      const calls = streams.map((s) => codeOf(() => client.streamSet(s.messages, { timeoutMs: 5000 })));
      const stored = async () => (await observer.getMany({ namespace: "a", keys: ["k0", "k1", "k2"] })).entries.length;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await stored()).toBe(2); // two calls run, the third waits on the client for a free stream
      streams[0]!.release();
      expect(await calls[0]).toBe("OK");
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await stored()).toBe(3);
      streams[1]!.release();
      streams[2]!.release();
      expect(await Promise.all(calls)).toEqual(["OK", "OK", "OK"]);
      client.close();
      observer.close();
    } finally {
      await t.dispose();
    }
  });
});
