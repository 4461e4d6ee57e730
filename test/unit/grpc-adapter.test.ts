import { Client, credentials, InterceptingCall, Metadata, Server, ServerCredentials, status, type Interceptor, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { addService, createClient, type ServiceClient, type ServiceImpl } from "../../core/grpc-adapter.js";
import { RpcError } from "../../core/rpc-error.js";
import { EchoService } from "../gen/tiercache/test/v1/echo_pb.js";

const impl: ServiceImpl<typeof EchoService> = {
  echo(req) {
    const failure = /^fail:(\d+)$/.exec(req.text);
    if (failure) throw new RpcError(Number(failure[1]), `asked to fail`);
    if (req.text === "throw") throw new Error("secret internal detail");
    return { text: req.text };
  },
  async collect(requests) {
    const parts: string[] = [];
    for await (const req of requests) parts.push(req.text);
    return { text: parts.join(",") };
  },
  async *repeat(req, ctx) {
    for (let i = 0; i < req.count; i++) {
      if (ctx.signal.aborted) return;
      yield { text: `${req.text}#${i}` };
    }
  },
  async *chat(requests) {
    for await (const req of requests) yield { text: req.text.toUpperCase() };
  },
};

describe("grpc-adapter", () => {
  const server = new Server();
  let address: string;
  let client: ServiceClient<typeof EchoService>;

  beforeAll(async () => {
    addService(server, EchoService, impl);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    address = `127.0.0.1:${port}`;
    client = createClient(EchoService, address, credentials.createInsecure(), { defaultTimeoutMs: 5000 });
  });
  afterAll(() => {
    client.close();
    server.forceShutdown();
  });

  it("serves unary calls", async () => {
    expect((await client.echo({ text: "hi" })).text).toBe("hi");
  });

  it("turns thrown RpcErrors into their status and other errors into a bare INTERNAL", async () => {
    await expect(client.echo({ text: `fail:${status.NOT_FOUND}` })).rejects.toMatchObject({ code: status.NOT_FOUND, details: "asked to fail" });
    const err = await client.echo({ text: "throw" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect(err).toMatchObject({ code: status.INTERNAL, details: "internal error" });
  });

  it("serves client-streaming calls", async () => {
    expect((await client.collect([{ text: "a" }, { text: "b" }, { text: "c" }])).text).toBe("a,b,c");
  });

  it("serves server-streaming calls", async () => {
    const got: string[] = [];
    for await (const res of client.repeat({ text: "x", count: 3 })) got.push(res.text);
    expect(got).toEqual(["x#0", "x#1", "x#2"]);
  });

  it("serves bidi calls, answering every request before the status", async () => {
    const requests = (async function* () {
      for (const text of ["a", "b", "c"]) yield { text };
    })();
    const got: string[] = [];
    for await (const res of client.chat(requests)) got.push(res.text);
    expect(got).toEqual(["A", "B", "C"]);
  });

  it("respects back-pressure on a long server stream read slowly, and stops when the client stops", async () => {
    let n = 0;
    for await (const res of client.repeat({ text: "y".repeat(1000), count: 100_000 })) {
      expect(res.text.length).toBeGreaterThan(1000);
      if (++n === 50) break;
    }
    expect(n).toBe(50);
    expect((await client.echo({ text: "still fine" })).text).toBe("still fine");
  });

  it("answers malformed request bytes with INVALID_ARGUMENT on every call kind", async () => {
    const raw = new Client(address, credentials.createInsecure());
    const bad = Buffer.from([0x0a, 0x05, 0x41]);
    const id = (b: Buffer) => b;
    const unary = await new Promise<ServiceError | null>((resolve) =>
      raw.makeUnaryRequest("/tiercache.test.v1.EchoService/Echo", id, id, bad, new Metadata(), {}, (err) => resolve(err)),
    );
    expect(unary?.code).toBe(status.INVALID_ARGUMENT);
    const clientStream = await new Promise<ServiceError | null>((resolve) => {
      const call = raw.makeClientStreamRequest("/tiercache.test.v1.EchoService/Collect", id, id, new Metadata(), {}, (err) => resolve(err));
      call.write(bad);
      call.end();
    });
    expect(clientStream?.code).toBe(status.INVALID_ARGUMENT);
    const bidi = await new Promise<ServiceError>((resolve) => {
      const call = raw.makeBidiStreamRequest("/tiercache.test.v1.EchoService/Chat", id, id, new Metadata(), {});
      call.on("error", resolve);
      call.on("data", () => {});
      call.write(bad);
      call.end();
    });
    expect(bidi.code).toBe(status.INVALID_ARGUMENT);
    raw.close();
  });

  it("cancels a call when its signal aborts, and applies deadlines", async () => {
    const controller = new AbortController();
    const stream = client.repeat({ text: "z", count: 1_000_000 }, { signal: controller.signal });
    const err = await (async () => {
      let n = 0;
      for await (const _ of stream) if (++n === 10) controller.abort();
    })().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: status.CANCELLED });
    const slow = (async function* () {
      yield { text: "a" };
      await new Promise((r) => setTimeout(r, 2000));
    })();
    await expect(client.collect(slow, { timeoutMs: 100 })).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
  });

  it("refuses a timeout or deadline grpc-js cannot carry with INVALID_ARGUMENT, on every call kind, without throwing synchronously", async () => {
    for (const timeoutMs of [1e15, -5, 0, Number.NaN, Infinity, 2 ** 31]) {
      await expect(client.echo({ text: "x" }, { timeoutMs })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
      await expect(client.collect([{ text: "x" }], { timeoutMs })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
      const repeat = client.repeat({ text: "x", count: 1 }, { timeoutMs });
      await expect(repeat[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
      const chat = client.chat([{ text: "x" }], { timeoutMs });
      await expect(chat[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    }
    for (const deadline of [Date.now() + 1e15, Number.NaN, new Date(Number.NaN)]) {
      await expect(client.echo({ text: "x" }, { deadline })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    }
    expect(await client.echo({ text: "ok" }, { timeoutMs: 2 ** 31 - 1 })).toMatchObject({ text: "ok" });
    expect(await client.echo({ text: "ok" }, { deadline: Infinity })).toMatchObject({ text: "ok" });
  });

  it("fails every kind of call made after close() with RpcError CANCELLED, with or without interceptors", async () => {
    const passThrough: Interceptor = (options, nextCall) => new InterceptingCall(nextCall(options));
    for (const channelOptions of [{}, { interceptors: [passThrough] }]) {
      const closed = createClient(EchoService, address, credentials.createInsecure(), { defaultTimeoutMs: 5000, channelOptions });
      expect((await closed.echo({ text: "before" })).text).toBe("before");
      closed.close();
      const drain = async (stream: AsyncIterable<unknown>) => {
        for await (const _ of stream) void _;
      };
      const outcomes = await Promise.all([
        closed.echo({ text: "hi" }),
        closed.collect([{ text: "a" }]),
        drain(closed.repeat({ text: "x", count: 1 })),
        drain(closed.chat([{ text: "a" }])),
      ].map((call) => call.then(() => "ok", (err: unknown) => (err instanceof RpcError ? `${status[err.code]}: ${err.details}` : `not an RpcError: ${String(err)}`))));
      expect(outcomes).toEqual([
        "CANCELLED: Echo was called after the client was closed",
        "CANCELLED: Collect was called after the client was closed",
        "CANCELLED: Repeat was called after the client was closed",
        "CANCELLED: Chat was called after the client was closed",
      ]);
    }
  });

  it("derives handler and client types from the descriptor", () => {
    expectTypeOf(client.echo).returns.resolves.toHaveProperty("text").toEqualTypeOf<string>();
    // @ts-expect-error a missing handler does not compile
    const missing: ServiceImpl<typeof EchoService> = { echo: impl.echo, collect: impl.collect, repeat: impl.repeat };
    const mistyped: ServiceImpl<typeof EchoService> = {
      ...impl,
      // @ts-expect-error a handler answering with the wrong field type does not compile
      echo: () => ({ text: 42 }),
    };
    expect(missing && mistyped).toBeTruthy();
  });
});

describe("grpc-adapter: a handler hears of cancellation without an AbortSignal", () => {
  const heard: { reason: unknown; reasonAfter: unknown; signalAborted: boolean }[] = [];
  const waiting: ServiceImpl<typeof EchoService> = {
    ...impl,
    echo(req, ctx) {
      if (req.text !== "wait") return { text: req.text };
      expect(ctx.cancelReason).toBeUndefined();
      return new Promise((resolve) => {
        const stopEarly = ctx.onCancel(() => heard.push({ reason: "listener that stopped listening was called", reasonAfter: undefined, signalAborted: false }));
        stopEarly();
        ctx.onCancel((reason) => {
          heard.push({ reason, reasonAfter: ctx.cancelReason, signalAborted: ctx.signal.aborted });
          resolve({ text: "late" });
        });
      });
    },
  };

  async function serve(maxDeadlineMs?: number) {
    const server = new Server();
    addService(server, EchoService, waiting, maxDeadlineMs === undefined ? {} : { maxDeadlineMs });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const client = createClient(EchoService, `127.0.0.1:${port}`, credentials.createInsecure(), { defaultTimeoutMs: 5000 });
    return { client, stop: () => (client.close(), server.forceShutdown()) };
  }

  it("calls onCancel listeners once when the client's deadline passes or it cancels, and not those that stopped listening", async () => {
    const { client, stop } = await serve();
    try {
      heard.length = 0;
      await expect(client.echo({ text: "wait" }, { timeoutMs: 100 })).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
      const controller = new AbortController();
      const cancelled = client.echo({ text: "wait" }, { signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      await expect(cancelled).rejects.toMatchObject({ code: status.CANCELLED });
      await new Promise((r) => setTimeout(r, 100));
      expect(heard).toHaveLength(2);
      for (const h of heard) {
        expect(h.reason).toBeInstanceOf(RpcError);
        expect(h.reason).toMatchObject({ code: status.CANCELLED });
        expect(h.reasonAfter).toBe(h.reason);
        expect(h.signalAborted).toBe(true);
      }
    } finally {
      stop();
    }
  });

  it("calls them with DEADLINE_EXCEEDED when the server's max-deadline ceiling passes first", async () => {
    const { client, stop } = await serve(150);
    try {
      heard.length = 0;
      await expect(client.echo({ text: "wait" }, { timeoutMs: 5000 })).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
      await new Promise((r) => setTimeout(r, 50));
      expect(heard).toHaveLength(1);
      expect(heard[0]!.reason).toMatchObject({ code: status.DEADLINE_EXCEEDED });
    } finally {
      stop();
    }
  });
});
