import { InterceptingCall, ListenerBuilder, RequesterBuilder, type Interceptor } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../helpers/eventually.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";
import { GatedWrites } from "../helpers/gated-writes.js";
import { refreshHeldBack, settledAt, watchCounter, writerAndReader } from "../helpers/own-writes.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";
import { warmLocal } from "../helpers/warm-local.js";

/**
 * A client's Watch leaves out the events of its own writes (see
 * WatchRequest.writer_id), and their answers do the events' work. These are
 * its faults: a write that times out and lands later, a late answer, a
 * write of unknown outcome on a server that keeps no history, and writes
 * that keep failing (the Watch must not restart for each, nor skip its
 * reconnection backoff). The first came from the review of an earlier
 * attempt (bench/README.md, sixteenth pass), the rest from this one's.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Delays the answers to Sets carried by the LeaseSession stream by `ms` while `late.on` is true. */
function lateSetAnswers(ms: number): { interceptor: Interceptor; late: { on: boolean } } {
  const late = { on: false };
  const interceptor: Interceptor = (options, nextCall) => {
    if (!options.method_definition.path.endsWith("/LeaseSession")) return new InterceptingCall(nextCall(options));
    const listener = new ListenerBuilder()
      .withOnReceiveMessage((message: { result?: { case?: string } }, next) => {
        if (late.on && message.result?.case === "set") void sleep(ms).then(() => next(message));
        else next(message);
      })
      .build();
    return new InterceptingCall(nextCall(options), new RequesterBuilder().withStart((metadata, _listener, next) => next(metadata, listener)).build());
  };
  return { interceptor, late };
}

/** Never sends the client's Sets of `key`: each one's outcome stays unknown to the client until it times out. */
function lostSetsOf(key: string): Interceptor {
  return (options, nextCall) => {
    const lost = (m: { call?: { case?: string; value?: { key?: string } }; key?: string }) => (m.call?.case === "set" ? m.call.value?.key === key : m.key === key);
    const requester = new RequesterBuilder().withSendMessage((message, next) => (lost(message) ? undefined : next(message))).build();
    return new InterceptingCall(nextCall(options), requester);
  };
}

describe("own writes held back by the durable tier", () => {
  let t: TestServer;
  const durable = new GatedWrites(() => Date.now());
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" }, { durable });
  });
  afterAll(async () => {
    await t.dispose();
  });

  it("whose answer comes late do not let a copy read before they landed outlive the Watch bound", async () => {
    const { interceptor, late } = lateSetAnswers(3500);
    const { writer, reader } = await writerAndReader(t, "late-answer", { localTier: { maxEntries: 1 }, channelOptions: { interceptors: [interceptor] } });
    let open!: () => void;
    await refreshHeldBack(writer, reader, () => {
      open = durable.hold();
      late.on = true;
    });
    await eventually(() => reader.getLocal("k") === "new");
    await reader.get("marker"); // evicts k (maxEntries 1)
    expect(await reader.get("k")).toBe("old"); // the write has not landed: "old" is right, and kept
    expect(reader.getLocal("k")).toBe("old");
    open();
    await eventually(async () => (await writer.get("k")) === "new");
    const landed = Date.now();
    while (reader.getLocal("k") === "old" && Date.now() - landed < 4000) await sleep(20);
    // The answer comes 3.5 s late; the READY that follows the left-out event must do its work within the bound (2.25 heartbeats).
    expect(Date.now() - landed).toBeLessThan(2000);
    await reader.settled();
  }, 20_000);

  it("that time out but land later do not leave a copy read in between", async () => {
    const namespace = "own-race-timeout";
    const { writer, reader } = await writerAndReader(t, namespace, { timeoutMs: 400 });
    let open!: () => void;
    await refreshHeldBack(writer, reader, () => (open = durable.hold()));
    await eventually(() => reader.wrapStats().writeFailures === 1, 3000);
    expect(reader.getLocal("k")).toBeUndefined();
    expect(await reader.get("k")).toBe("old");
    expect(reader.getLocal("k")).toBe("old");
    open();
    await settledAt(writer, reader, "new");
    expect(reader.getLocal("k")).not.toBe("old");
  });

  it("that keep timing out restart the Watch stream at most about once a second", async () => {
    const watches = watchCounter();
    const { reader } = await writerAndReader(t, "timeouts", { timeoutMs: 150, onBackgroundError: () => {}, channelOptions: { interceptors: [watches.interceptor] } });
    const opened = watches.calls();
    const open = durable.hold();
    try {
      for (let i = 0; i < 8; i++) {
        expect(await reader.wrap(`t${i}`, () => i, { ttl: 60_000, lease: false })).toBe(i);
        await reader.settled();
      }
      expect(reader.wrapStats().writeFailures).toBe(8);
      expect(watches.calls() - opened).toBeGreaterThanOrEqual(1);
      expect(watches.calls() - opened).toBeLessThanOrEqual(2);
    } finally {
      open();
    }
  });
});

describe("a write of unknown outcome soon after a successful own write, on a server that keeps no Watch history", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory", watchHistoryBytes: 0 });
  });
  afterAll(async () => {
    await t.dispose();
  });

  it("leaves the namespace's other local copies in place", async () => {
    const namespace = "no-history";
    const client = t.newClient({ namespace, timeoutMs: 300, localTier: true, onBackgroundError: () => {}, channelOptions: { interceptors: [lostSetsOf("lost")] } });
    for (let i = 0; i < 20; i++) await t.client.set(`hot${i}`, i, { namespace });
    for (let i = 0; i < 20; i++) await warmLocal(client, `hot${i}`);
    expect(await client.wrap("stored", () => "v", { ttl: 60_000, lease: false })).toBe("v");
    await client.settled(); // its event is left out; a READY moves the cursor past it
    expect(await client.wrap("lost", () => "v", { ttl: 60_000, lease: false })).toBe("v");
    await eventually(() => client.wrapStats().writeFailures === 1, 3000);
    await sleep(200); // the Watch restarted under a new writer id, from the cursor
    const held = Array.from({ length: 20 }, (_, i) => client.getLocal(`hot${i}`)).filter((v) => v !== undefined);
    expect(held).toHaveLength(20);
  });
});

describe("background writes that keep failing while the server refuses the client's Watch", () => {
  let t: TestServer;
  const durable = new FakeDurableTier(() => Date.now());
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory", maxWatchers: 1 }, { durable });
  });
  afterAll(async () => {
    await t.dispose();
  });

  it("leave the Watch's reconnection backoff as it is", async () => {
    const namespace = "full";
    await writerAndReader(t, namespace, {}); // its reader holds the server's only Watch slot
    const watches = watchCounter();
    const client = t.newClient({ namespace, localTier: true, channelOptions: { interceptors: [watches.interceptor] }, onBackgroundError: () => {} });
    await client.get("marker"); // its Watch is refused (RESOURCE_EXHAUSTED), and backs off
    await sleep(500);
    const before = watches.calls();
    durable.failWrites = true;
    try {
      const until = Date.now() + 3000;
      for (let i = 0; Date.now() < until; i++) {
        await client.wrap(`k${i}`, () => i, { ttl: 60_000, lease: false });
        await client.settled();
        await sleep(10);
      }
    } finally {
      durable.failWrites = false;
    }
    expect(client.wrapStats().writeFailures).toBeGreaterThan(20);
    expect(watches.calls() - before).toBeLessThan(10); // the backoff doubles up to 2 s
  }, 20_000);
});
