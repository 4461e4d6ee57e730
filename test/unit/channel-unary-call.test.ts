import { inspect } from "node:util";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client, credentials, InterceptingCall, Metadata, Server, ServerCredentials, status, type Interceptor, type ServerWritableStream } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createClient, type ServiceClient } from "../../core/grpc-adapter.js";
import { RpcError } from "../../core/rpc-error.js";
import { EchoRequestSchema, EchoResponseSchema, EchoService } from "../gen/tiercache/test/v1/echo_pb.js";

const ECHO_PATH = "/tiercache.test.v1.EchoService/Echo";
const bytes = (b: Buffer) => b;

/**
 * A raw server for Echo whose answer the request's text scripts: any number
 * of messages (good or undecodable), then any status with trailing metadata,
 * or no answer at all. Written as a server stream so that it can send what a
 * unary server never would.
 */
function scriptedAnswer(call: ServerWritableStream<Buffer, Buffer>): void {
  const text = fromBinary(EchoRequestSchema, call.request).text;
  const [messages, code, details] = text.split("|") as [string, string, string];
  if (messages === "silent") return;
  for (const m of messages.split(",").filter(Boolean)) {
    call.write(m === "garbage" ? Buffer.from([0x0a, 0xff]) : Buffer.from(toBinary(EchoResponseSchema, { $typeName: "tiercache.test.v1.EchoResponse", text: m })));
  }
  const trailer = new Metadata();
  trailer.set("x-detail", `t-${text.length}`);
  if (Number(code) === status.OK) call.end(trailer);
  else call.emit("error", { code: Number(code), details, metadata: trailer });
}

/** What a call gave: its value, or its error's class, code, details, message and metadata. */
async function outcome(call: () => Promise<unknown>): Promise<unknown> {
  try {
    return { value: await call() };
  } catch (err) {
    if (!(err instanceof RpcError)) return { thrown: String(err) };
    return {
      rpcError: true,
      code: err.code,
      // A deadline's details tell where the call was and for how long, which two calls never share.
      details: err.details.replace(/^(Deadline exceeded after).*$/, "$1 …"),
      message: err.message.replace(/(Deadline exceeded after).*$/, "$1 …"),
      metadata: err.metadata?.getMap(),
      causeCode: (err.cause as { code?: number } | undefined)?.code,
    };
  }
}

describe("unary calls on the channel (channel-unary-call.ts)", () => {
  const server = new Server();
  let address: string;
  let lean: ServiceClient<typeof EchoService>;
  let intercepted: ServiceClient<typeof EchoService>;
  let passedThrough = 0;
  // An interceptor that changes nothing: its client takes grpc-js's own call path (makeUnaryRequest).
  const passThrough: Interceptor = (options, nextCall) => {
    passedThrough++;
    return new InterceptingCall(nextCall(options));
  };

  beforeAll(async () => {
    server.addService(
      { Echo: { path: ECHO_PATH, requestStream: false, responseStream: true, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes } },
      { Echo: scriptedAnswer },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    address = `127.0.0.1:${port}`;
    lean = createClient(EchoService, address, credentials.createInsecure(), { defaultTimeoutMs: 5000 });
    intercepted = createClient(EchoService, address, credentials.createInsecure(), { defaultTimeoutMs: 5000, channelOptions: { interceptors: [passThrough] } });
  });
  afterAll(() => {
    lean.close();
    intercepted.close();
    server.forceShutdown();
  });

  /** The same call on both clients: the same outcome, and the intercepted one did go through its interceptor. */
  async function same(call: (client: ServiceClient<typeof EchoService>) => Promise<unknown>): Promise<unknown> {
    const before = passedThrough;
    const [a, b] = await Promise.all([outcome(() => call(lean)), outcome(() => call(intercepted))]);
    expect(passedThrough).toBe(before + 1);
    expect(a).toEqual(b);
    return a;
  }

  it("answers as grpc-js's own call path does, whatever the server sends", async () => {
    const scripts = [
      `one|${status.OK}|`,
      `|${status.OK}|`,
      `one,two|${status.OK}|`,
      `garbage|${status.OK}|`,
      `one,garbage|${status.OK}|`,
      `|${status.NOT_FOUND}|nothing here`,
      `one|${status.UNAVAILABLE}|gone away`,
      `|${status.RESOURCE_EXHAUSTED}|too big: ünïcode`,
    ];
    const seen = [];
    for (const script of scripts) seen.push(await same((client) => client.echo({ text: script }, { timeoutMs: 1000 })));
    expect(seen[0]).toEqual({ value: expect.objectContaining({ text: "one" }) });
    expect(seen[1]).toMatchObject({ rpcError: true, code: status.UNIMPLEMENTED, details: "No message received" });
    // A unary call reads one message: grpc-js never reads the second, so the status waits for the deadline.
    expect(seen[2]).toMatchObject({ rpcError: true, code: status.DEADLINE_EXCEEDED });
    expect(seen[3]).toMatchObject({ rpcError: true, code: status.INTERNAL, details: expect.stringMatching(/^Response message parsing error: /) });
    expect(seen[5]).toMatchObject({ rpcError: true, code: status.NOT_FOUND, details: "nothing here", causeCode: status.NOT_FOUND });
    expect(seen[6]).toMatchObject({ rpcError: true, code: status.UNAVAILABLE, metadata: { "x-detail": `t-${scripts[6]!.length}` } });
  });

  it("applies deadlines and cancellation, and refuses what cannot be sent, as grpc-js's own call path does", async () => {
    const deadline = await same((client) => client.echo({ text: "silent||" }, { timeoutMs: 50 }));
    expect(deadline).toMatchObject({ code: status.DEADLINE_EXCEEDED });
    const aborted = await same((client) => client.echo({ text: "silent||" }, { signal: AbortSignal.abort() }));
    expect(aborted).toMatchObject({ code: status.CANCELLED, details: "Cancelled on client" });
    const later = await same((client) => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 30);
      return client.echo({ text: "silent||" }, { signal: controller.signal });
    });
    expect(later).toMatchObject({ code: status.CANCELLED });
    // Plain JavaScript can pass a signal-like object; it fails as it did, and never leaves the call or the process broken.
    const fakeAborted = await same((client) => client.echo({ text: `x|${status.OK}|` }, { signal: { aborted: true } as unknown as AbortSignal }));
    expect(fakeAborted).toMatchObject({ code: status.CANCELLED });
    const notASignal = await same((client) => client.echo({ text: `x|${status.OK}|` }, { signal: { aborted: false } as unknown as AbortSignal }));
    expect(notASignal).toMatchObject({ thrown: expect.stringContaining("addEventListener") });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const unencodable = await same((client) => client.echo({ text: Symbol("no text") as unknown as string }));
    expect(unencodable).toMatchObject({ code: status.INTERNAL, details: expect.stringMatching(/^Request message serialization failure: /) });
  });

  it("takes grpc-js's own call path only for a client with interceptors", async () => {
    const ownPath = vi.spyOn(Client.prototype, "makeUnaryRequest");
    try {
      await lean.echo({ text: `x|${status.OK}|` });
      expect(ownPath).not.toHaveBeenCalled();
      await intercepted.echo({ text: `x|${status.OK}|` });
      expect(ownPath).toHaveBeenCalledOnce();
    } finally {
      ownPath.mockRestore();
    }
  });

  it("tells in a failed call's error where the call came from, as grpc-js's own call path does", async () => {
    async function callerNamedForTheStack(client: ServiceClient<typeof EchoService>) {
      return await client.echo({ text: `|${status.NOT_FOUND}|no` });
    }
    for (const client of [lean, intercepted]) {
      const err = await callerNamedForTheStack(client).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RpcError);
      expect(inspect(err)).toContain("callerNamedForTheStack");
    }
  });

  it("leaves no abort listener on a signal once a call has ended", async () => {
    const controller = new AbortController();
    const removed = vi.spyOn(controller.signal, "removeEventListener");
    await lean.echo({ text: `x|${status.OK}|` }, { signal: controller.signal });
    await lean.echo({ text: `|${status.NOT_FOUND}|no` }, { signal: controller.signal }).catch(() => {});
    expect(removed.mock.calls.map(([type]) => type)).toEqual(["abort", "abort"]);
  });

  it("rejects, without throwing, once its client is closed", async () => {
    const closed = createClient(EchoService, address, credentials.createInsecure(), {});
    const closedIntercepted = createClient(EchoService, address, credentials.createInsecure(), { channelOptions: { interceptors: [passThrough] } });
    closed.close();
    closedIntercepted.close();
    const a = await outcome(() => closed.echo({ text: `x|${status.OK}|` }));
    const b = await outcome(() => closedIntercepted.echo({ text: `x|${status.OK}|` }));
    expect(a).toEqual(b);
    expect(a).toMatchObject({ rpcError: true, code: status.CANCELLED, details: "Echo was called after the client was closed" });
  });
});
