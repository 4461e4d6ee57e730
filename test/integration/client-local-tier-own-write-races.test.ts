import { InterceptingCall, ListenerBuilder, RequesterBuilder, type Interceptor } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../helpers/eventually.js";
import { gatedSets } from "../helpers/gated-sets.js";
import { refreshHeldBack, settledAt, writerAndReader } from "../helpers/own-writes.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

/**
 * Reads that race a client's own write: the local tier may keep what such a
 * read got only until the write is known to have landed (its answer, or a
 * READY past its left-out Watch event). The first three cases came from a
 * hostile review of an earlier attempt to leave a writer's own events out of
 * its Watch stream (bench/README.md, sixteenth pass); the fourth from the
 * review of the change that landed. Faults (late answers, timeouts) are in
 * client-own-write-faults.test.ts.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a local copy read while the client's own write is in flight", () => {
  let t: TestServer;
  let n = 0;
  const nextNamespace = () => `own-race-${++n}`;
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" });
  });
  afterAll(async () => {
    await t.dispose();
  });

  it("is dropped when the own write lands after another client's write that the read returned", async () => {
    const namespace = nextNamespace();
    const { interceptor, release } = gatedSets();
    const { writer, reader } = await writerAndReader(t, namespace, { channelOptions: { interceptors: [interceptor] } });
    expect(await reader.wrap("k", () => "own", { ttl: 60_000, lease: false })).toBe("own");
    await writer.set("k", "foreign");
    await eventually(() => reader.getLocal("k") === undefined);
    expect(await reader.get("k")).toBe("foreign");
    expect(reader.getLocal("k")).toBe("foreign");
    release();
    await reader.settled();
    await settledAt(writer, reader, "own");
    expect(reader.getLocal("k")).not.toBe("foreign");
  });

  it("is dropped when an eager refresh's write lands after a read of the old value", async () => {
    const namespace = nextNamespace();
    const { interceptor, release } = gatedSets();
    const { writer, reader } = await writerAndReader(t, namespace, { localTier: { maxEntries: 1 }, channelOptions: { interceptors: [interceptor] } });
    await refreshHeldBack(writer, reader);
    await eventually(() => reader.getLocal("k") === "new");
    await reader.get("marker"); // evicts k (maxEntries 1)
    expect(reader.getLocal("k")).toBeUndefined();
    expect(await reader.get("k")).toBe("old");
    release();
    await reader.settled();
    await settledAt(writer, reader, "new");
    expect(reader.getLocal("k")).not.toBe("old");
  });

  it("is not kept when the read's answer arrives after the own write's", async () => {
    const namespace = nextNamespace();
    const sets = gatedSets();
    const gets = gatedGetAnswers();
    const { writer, reader } = await writerAndReader(t, namespace, { channelOptions: { interceptors: [sets.interceptor, gets.interceptor] } });
    expect(await reader.wrap("k", () => "own", { ttl: 60_000, lease: false })).toBe("own");
    await writer.set("k", "foreign");
    await eventually(() => reader.getLocal("k") === undefined);
    gets.hold();
    const read = reader.get("k");
    await gets.held; // the server answered "foreign" before the own write landed
    sets.release();
    await reader.settled();
    gets.release();
    expect(await read).toBe("foreign");
    await settledAt(writer, reader, "own");
    expect(reader.getLocal("k")).not.toBe("foreign");
  });

  it("is dropped even when it equals the own write's value, since it carries another TTL", async () => {
    const namespace = nextNamespace();
    const { interceptor, release } = gatedSets();
    const { writer, reader } = await writerAndReader(t, namespace, { channelOptions: { interceptors: [interceptor] } });
    expect(await reader.wrap("k", () => 42, { ttl: 300, lease: false })).toBe(42);
    await writer.set("k", 42, { ttl: 60_000 });
    await eventually(() => reader.getLocal("k") === undefined);
    expect(await reader.get("k")).toBe(42);
    expect(reader.getLocal("k")).toBe(42);
    release();
    await reader.settled();
    await settledAt(writer, reader, 42);
    await sleep(400); // past the own write's TTL: the server holds nothing now
    expect(await writer.get("k")).toBeUndefined();
    expect(reader.getLocal("k")).toBeUndefined();
  });
});

/** Holds the answers of the client's unary Gets, once `hold()` is called, until `release()`; `held` resolves when one is held. */
function gatedGetAnswers(): { interceptor: Interceptor; hold: () => void; held: Promise<void>; release: () => void } {
  let holding = false;
  let open!: () => void;
  let heard!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const held = new Promise<void>((resolve) => (heard = resolve));
  const interceptor: Interceptor = (options, nextCall) => {
    if (!holding || !options.method_definition.path.endsWith("/Get")) return new InterceptingCall(nextCall(options));
    const listener = new ListenerBuilder()
      .withOnReceiveMessage((message, next) => {
        heard();
        void gate.then(() => next(message));
      })
      .withOnReceiveStatus((status, next) => void gate.then(() => next(status)))
      .build();
    return new InterceptingCall(nextCall(options), new RequesterBuilder().withStart((metadata, _listener, next) => next(metadata, listener)).build());
  };
  return { interceptor, hold: () => (holding = true), held, release: () => open() };
}
