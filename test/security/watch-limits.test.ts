import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type ServiceClient } from "../../core/grpc-adapter.js";
import { CacheService, WatchEventKind, WatchRequestSchema, WatchResponseSchema, type WatchResponse } from "../../gen/tiercache/v1/cache_pb.js";
import { resolveConfig } from "../../server/config.js";
import { latencyProbe, startServerChild, type ServerChild } from "../helpers/server-child.js";

// The server runs in a child process, so that a stall of its event loop shows in the probe's latency
// and not in the test's own. The Watch is read raw (bytes, decoded here) to keep client work small.

const PROBE_DEADLINE_MS = 1000;
const WATCH_PATH = `/${CacheService.typeName}/Watch`;
const identity = (bytes: Buffer) => bytes;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const names = (count: number, prefix = "ns") => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

type ProbeResult = Awaited<ReturnType<ReturnType<typeof latencyProbe>["stop"]>>;

/** Get calls in a loop on their own (already open) connection, each with a deadline: their latencies and failures. */
async function startProbe(address: string): Promise<{ stop(): Promise<ProbeResult> }> {
  const client = createClient(CacheService, address, credentials.createInsecure(), { channelOptions: { "grpc.use_local_subchannel_pool": 1 } });
  await client.get({ key: "warm-up" });
  const probe = latencyProbe(() => client.get({ key: "probe" }, { timeoutMs: PROBE_DEADLINE_MS }));
  return {
    async stop() {
      const result = await probe.stop();
      client.close();
      return result;
    },
  };
}

/** A raw Watch call (of these namespaces, or of an encoded request): its messages as they come (decoded when first looked at), its end status. */
function openWatch(client: Client, request: string[] | Buffer) {
  const body = Buffer.isBuffer(request) ? request : Buffer.from(toBinary(WatchRequestSchema, create(WatchRequestSchema, { cursors: request.map((namespace) => ({ namespace })) })));
  const call: ClientReadableStream<Buffer> = client.makeServerStreamRequest(WATCH_PATH, identity, identity, body, new Metadata(), {});
  const received: Buffer[] = [];
  const decoded: WatchResponse[] = [];
  const messages = () => {
    for (let i = decoded.length; i < received.length; i++) decoded.push(fromBinary(WatchResponseSchema, received[i]!));
    return decoded;
  };
  const waiters: (() => void)[] = [];
  call.on("data", (bytes: Buffer) => {
    received.push(bytes);
    for (const wake of waiters.splice(0)) wake();
  });
  const ended = new Promise<{ code: status; details: string }>((resolve) => {
    call.on("error", (err: ServiceError) => resolve({ code: err.code, details: err.details }));
    call.on("status", (s) => resolve({ code: s.code, details: s.details }));
  });
  ended.then(() => {
    for (const wake of waiters.splice(0)) wake();
  });
  return {
    call,
    messages,
    /** Messages received so far, not decoded. */
    count: () => received.length,
    ended,
    /** Waits until `check` holds of the messages so far (or the call ends). */
    async until(check: (messages: WatchResponse[]) => boolean, ms = 20_000): Promise<void> {
      await this.untilCount(() => check(messages()), ms);
    },
    /** Waits until `check` holds (or the call ends). */
    async untilCount(check: () => boolean, ms = 20_000): Promise<void> {
      const end = Date.now() + ms;
      let over = false;
      void ended.then(() => (over = true));
      while (!check()) {
        if (over) throw new Error(`the Watch ended: ${JSON.stringify(await ended)}`);
        if (Date.now() > end) throw new Error(`not within ${ms} ms; ${received.length} messages so far`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
  };
}

const kindOf = (m: WatchResponse) => WatchEventKind[m.kind];

/**
 * Runs `rounds` Watch calls of `count` fresh namespaces one after the other
 * (each read up to its last READY, then cancelled) while the probe runs, after
 * one such call to warm up. The machine is shared: a measurement whose p99
 * misses 50 ms is taken again, up to three times; a server that stalls misses
 * every time. Returns the best measurement and logs them all.
 */
async function probeDuringWatches(server: ServerChild, client: Client, count: number, rounds: number) {
  const warmUp = openWatch(client, names(count, "warm-"));
  await warmUp.untilCount(() => warmUp.count() >= count);
  warmUp.call.cancel();
  let best: ProbeResult | undefined;
  for (let attempt = 1; attempt <= 3 && !(best && best.p99 < 50 && best.failed === 0); attempt++) {
    await server.loopDelay();
    const probe = await startProbe(server.address);
    await sleep(200);
    for (let round = 0; round < rounds; round++) {
      // With fresh cursors, a Watch answers exactly one READY per namespace before anything else.
      const watch = openWatch(client, names(count, `a${attempt}r${round}-`));
      await watch.untilCount(() => watch.count() >= count);
      watch.call.cancel();
    }
    await sleep(200);
    const result = await probe.stop();
    const loop = await server.loopDelay();
    console.log(
      `probe during ${rounds} Watch calls of ${count} namespaces (attempt ${attempt}): ${result.count} calls, p99 ${result.p99.toFixed(1)} ms, ` +
        `max ${result.max.toFixed(1)} ms, past the ${PROBE_DEADLINE_MS} ms deadline ${result.failed}; server event loop: longest delay ${loop.maxMs.toFixed(1)} ms, p99 ${loop.p99Ms.toFixed(1)} ms`,
    );
    if (!best || result.failed < best.failed || (result.failed === best.failed && result.p99 < best.p99)) best = result;
  }
  return best!;
}

describe("Watch limits, against a server process", () => {
  let server: ServerChild;
  let raw: Client;
  let rpc: ServiceClient<typeof CacheService>;

  beforeAll(async () => {
    server = await startServerChild(["--storage", "memory", "--max-namespaces", "5000"]);
    raw = new Client(server.address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    rpc = createClient(CacheService, server.address, credentials.createInsecure());
  }, 60_000);
  afterAll(async () => {
    raw?.close();
    rpc?.close();
    await server?.stop();
  });

  it("--max-watch-namespaces and --max-watchers resolve with their defaults", () => {
    expect(resolveConfig([], {})).toMatchObject({ maxWatchNamespaces: 1000, maxWatchers: 1000, watchHistoryBytes: 32 * 1024 ** 2 });
    expect(resolveConfig(["--max-watch-namespaces", "5", "--watch-history-bytes", "1MiB"], { TIERCACHE_MAX_WATCHERS: "7" })).toMatchObject({ maxWatchNamespaces: 5, maxWatchers: 7, watchHistoryBytes: 1024 ** 2 });
    expect(() => resolveConfig(["--max-watch-namespaces", "0"], {})).toThrow(/--max-watch-namespaces/);
  });

  it("a Watch naming the most namespaces allowed does not hold up other calls; one more namespace is refused", async () => {
    const result = await probeDuringWatches(server, raw, 1000, 20);
    expect(result.failed).toBe(0);
    expect(result.p99).toBeLessThan(50);
    const tooMany = openWatch(raw, names(1001));
    expect(await tooMany.ended).toEqual({ code: status.RESOURCE_EXHAUSTED, details: "a Watch may name at most max-watch-namespaces (1000) namespaces; this one names 1001" });
    await sleep(200);
    expect((await server.watchHistory()).namespaceLogs).toBe(0); // the logs those Watch calls created went with them
  });

  it("refuses a Watch request of a million namespaces before decoding it", async () => {
    const cursor = Buffer.from(toBinary(WatchRequestSchema, create(WatchRequestSchema, { cursors: [{ namespace: "n" }] })));
    const huge = openWatch(raw, Buffer.alloc(cursor.length * 1_000_000, cursor)); // 1,000,000 cursors, 5 MB
    // The size is the reason given: the request was refused from its length, not after decoding (which says how many it names).
    expect(await huge.ended).toMatchObject({ code: status.RESOURCE_EXHAUSTED, details: expect.stringMatching(/^a Watch may name at most max-watch-namespaces \(1000\) namespaces; this request is \d+ bytes/) });
  });

  it("with --max-watch-namespaces 12000, the issue's Watch of 12,000 namespaces does not hold up other calls either", async () => {
    const big = await startServerChild(["--storage", "memory", "--max-watch-namespaces", "12000"]);
    const client = new Client(big.address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    try {
      const result = await probeDuringWatches(big, client, 12_000, 3);
      expect(result.failed).toBe(0);
      expect(result.p99).toBeLessThan(50);
    } finally {
      client.close();
      await big.stop();
    }
  });

  it("refuses a Watch stream past --max-watchers, and takes one again when a stream ends", async () => {
    const small = await startServerChild(["--storage", "memory", "--max-watchers", "3"]);
    const client = new Client(small.address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    try {
      const open = [openWatch(client, ["a"]), openWatch(client, ["b"]), openWatch(client, ["c"])];
      for (const watch of open) await watch.until((ms) => ms.some((m) => m.kind === WatchEventKind.READY));
      const fourth = openWatch(client, ["d"]);
      expect(await fourth.ended).toEqual({ code: status.RESOURCE_EXHAUSTED, details: "too many Watch streams: this server serves at most max-watchers (3) at once; retry later" });
      open[0]!.call.cancel();
      // The server frees the slot once it sees the cancellation.
      const end = Date.now() + 5_000;
      let fifth = openWatch(client, ["e"]);
      while ((await Promise.race([fifth.ended, fifth.untilCount(() => fifth.count() > 0).then(() => "open" as const)])) !== "open") {
        if (Date.now() > end) throw new Error("no slot freed");
        await sleep(20);
        fifth = openWatch(client, ["e"]);
      }
      for (const watch of [...open.slice(1), fifth]) watch.call.cancel();
    } finally {
      client.close();
      await small.stop();
    }
  });

  it("delivers the events of many namespaces to one watcher", async () => {
    const watch = openWatch(raw, names(1000, "many-"));
    await watch.until((ms) => ms.filter((m) => m.kind === WatchEventKind.READY).length === 1000);
    const written = names(1000, "many-").filter((_, i) => i % 10 === 0);
    for (const namespace of written) await rpc.set({ namespace, key: "k", value: new Uint8Array([1]) });
    await watch.until((ms) => ms.filter((m) => m.kind === WatchEventKind.SET).length === written.length);
    expect(watch.messages().filter((m) => m.kind === WatchEventKind.SET).map((m) => `${m.namespace}:${m.keys.join()}`)).toEqual(written.map((ns) => `${ns}:k`));
    watch.call.cancel();
  });

  it("a reader that stops reading gets RESET + READY for what it missed, the server stays responsive, and events flow again", async () => {
    const namespaces = names(1000, "slow-");
    const watch = openWatch(raw, namespaces);
    await watch.until((ms) => ms.filter((m) => m.kind === WatchEventKind.READY).length === 1000);
    watch.call.pause(); // stops reading: flow control fills, then the server's queue
    await server.loopDelay();
    const probe = await startProbe(server.address);
    const keys = Array.from({ length: 100 }, (_, i) => `gone-${i}`);
    for (let i = 0; i < 3000; i += 4) {
      await Promise.all(Array.from({ length: 4 }, (_, j) => rpc.deleteMany({ namespace: namespaces[(i + j) % 1000]!, keys })));
    }
    const result = await probe.stop();
    const loop = await server.loopDelay();
    console.log(
      `probe while a paused watcher of 1000 namespaces fell behind by 3000 events (300k keys): ${result.count} calls, p99 ${result.p99.toFixed(1)} ms, max ${result.max.toFixed(1)} ms, ` +
        `failed ${result.failed}; server event loop: longest delay ${loop.maxMs.toFixed(1)} ms, p99 ${loop.p99Ms.toFixed(1)} ms`,
    );
    expect(result.failed).toBe(0); // the probe competes with the writes here: its deadline is the bound, not p99

    const seen = watch.count();
    watch.call.resume();
    await watch.until((ms) => ms.slice(seen).some((m) => m.kind === WatchEventKind.HEARTBEAT)); // a heartbeat: nothing is queued any more
    const after = watch.messages().slice(seen).filter((m) => m.kind !== WatchEventKind.HEARTBEAT);
    const resets = after.flatMap((m, i) => (m.kind === WatchEventKind.RESET ? [i] : []));
    expect(resets.length).toBeGreaterThan(0);
    for (const i of resets) {
      const [reset, ready] = [after[i]!, after[i + 1]!];
      expect([kindOf(ready), ready.namespace, ready.seq]).toEqual(["READY", reset.namespace, reset.seq]);
    }
    // Far fewer messages than events: the backlog was replaced, not delivered.
    expect(after.length).toBeLessThan(3000);

    await rpc.deleteMany({ namespace: "slow-7", keys: ["after"] });
    await watch.until((ms) => ms.some((m) => m.namespace === "slow-7" && m.keys[0] === "after"));
    watch.call.cancel();
  });
});
