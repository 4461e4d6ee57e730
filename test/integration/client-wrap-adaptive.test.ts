import { InterceptingCall, ListenerBuilder, RequesterBuilder, type Interceptor } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wrapContext } from "../../client/index.js";
import { fakeClock } from "../helpers/fake-clock.js";
import { expectOneEagerRefresh } from "../helpers/eager-refresh.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";
import { eventually } from "../helpers/eventually.js";
import { gatedSets } from "../helpers/gated-sets.js";
import { warmLocal } from "../helpers/warm-local.js";


const CALL_NAMES: Record<string, string> = { getOrLease: "GetOrLease", set: "Set", releaseLease: "ReleaseLease" };

interface SessionMessage {
  id: bigint;
  call?: { case?: string };
  result?: { case?: string };
}

/** Records each finished call's method name (Watch excluded): a unary call when it ends, a call a LeaseSession carries when it is answered. */
function countingInterceptor(finished: string[]): Interceptor {
  return (options, nextCall) => {
    const method = options.method_definition.path.split("/").pop()!;
    const sent = new Map<bigint, string>();
    const listener = new ListenerBuilder()
      .withOnReceiveMessage((message: SessionMessage, next) => {
        const name = sent.get(message.id);
        if (method === "LeaseSession" && name !== undefined) finished.push(name);
        next(message);
      })
      .withOnReceiveStatus((status, next) => {
        if (method !== "Watch" && method !== "LeaseSession") finished.push(method);
        next(status);
      })
      .build();
    const requester = new RequesterBuilder()
      .withStart((metadata, _listener, next) => next(metadata, listener))
      .withSendMessage((message: SessionMessage, next) => {
        if (method === "LeaseSession") sent.set(message.id, CALL_NAMES[message.call!.case!]!);
        next(message);
      })
      .build();
    return new InterceptingCall(nextCall(options), requester);
  };
}

describe("wrap: one round trip per miss, own-write echo, adaptive caching, eager refresh", () => {
  const clock = fakeClock(Date.now());
  let t: TestServer;
  let n = 0;
  const ns = () => `adaptive${++n}`;

  beforeAll(async () => {
    t = await startTestServer({ storage: "memory", maxValueBytes: 64 * 1024 }, { clock: clock.now });
  });
  afterAll(async () => {
    await t.dispose();
  });

  it("a miss makes one call on the caller's path; the value is then served locally, and its own Watch echo does not drop it", async () => {
    const namespace = ns();
    const finished: string[] = [];
    const reader = t.newClient({ namespace, localTier: { clock: clock.now }, channelOptions: { interceptors: [countingInterceptor(finished)] } });
    const writer = t.newClient({ namespace });
    await writer.set("marker", 0);
    await warmLocal(reader, "marker", namespace);
    finished.length = 0;
    let loads = 0;
    const loader = async () => ({ n: ++loads });
    const returned = await reader.wrap("k", loader, { ttl: 60_000 });
    expect(returned).toEqual({ n: 1 });
    expect(finished).toEqual(["GetOrLease"]);
    // The local copy is what a server read would give (a serializer round trip), not the loader's own object.
    expect(reader.getLocal("k")).toEqual({ n: 1 });
    expect(reader.getLocal("k")).not.toBe(returned);
    await reader.settled();
    expect(finished).toEqual(["GetOrLease", "Set"]);
    // Events arrive in order: once the marker's change dropped its copy, the echo of the Set came before it.
    await writer.set("marker", 1);
    await eventually(() => reader.getLocal("marker") === undefined);
    expect(reader.getLocal("k")).toEqual({ n: 1 });
    expect(await reader.wrap("k", loader, { ttl: 60_000 })).toEqual({ n: 1 });
    expect(finished).toEqual(["GetOrLease", "Set"]);
    expect(loads).toBe(1);
    // Another writer's change of the key drops the copy.
    await writer.set("k", { n: 99 });
    await eventually(() => reader.getLocal("k") === undefined);
    expect(await reader.wrap("k", loader, { ttl: 60_000 })).toEqual({ n: 99 });
    expect(loads).toBe(1);
  });

  it("a foreign write that lands while the client's own write is in flight drops the copy, and the client ends up agreeing with the server", async () => {
    const namespace = ns();
    const { interceptor, release } = gatedSets();
    const reader = t.newClient({ namespace, localTier: { clock: clock.now }, channelOptions: { interceptors: [interceptor] } });
    const writer = t.newClient({ namespace });
    await writer.set("marker", 0);
    await warmLocal(reader, "marker", namespace);
    expect(await reader.wrap("k", () => "own", { ttl: 60_000, lease: false })).toBe("own");
    expect(reader.getLocal("k")).toBe("own");
    // Another client writes the key before this client's Set reaches the server.
    await writer.set("k", "foreign");
    await eventually(() => reader.getLocal("k") === undefined);
    release();
    await reader.settled();
    // The own write landed last: its echo must not bring back a copy the foreign write dropped, nor keep "foreign".
    await writer.set("marker", 1);
    await eventually(() => reader.getLocal("marker") === undefined);
    expect(await writer.get("k")).toBe("own");
    expect(await reader.get("k")).toBe("own");
  });

  it("a background write that fails drops the local copy, is counted and reported, and gives the lease back", async () => {
    const namespace = ns();
    const errors: string[] = [];
    const reader = t.newClient({ namespace, localTier: { clock: clock.now }, onBackgroundError: (_err, info) => errors.push(`${info.task}:${info.key}`) });
    await t.client.set("marker", 0, { namespace });
    await warmLocal(reader, "marker", namespace);
    const big = "x".repeat(100 * 1024);
    expect(await reader.wrap("big", async () => big, { ttl: 60_000, leaseMs: 60_000 })).toBe(big);
    await reader.settled();
    expect(errors).toEqual(["write:big"]);
    expect(reader.wrapStats().writeFailures).toBe(1);
    expect(reader.getLocal("big")).toBeUndefined();
    // The lease is free: another client computes at once instead of waiting for it.
    const other = t.newClient({ namespace });
    expect(await other.wrap("big", async () => "small", { ttl: 60_000, leaseWaitMs: 60_000 })).toBe("small");
  });

  it("ctx.setTtl and ctx.setGrace override the options for this value only", async () => {
    const namespace = ns();
    const client = t.newClient({ namespace });
    await client.wrap(
      "short",
      (ctx) => {
        ctx.setTtl(1_000);
        return "s";
      },
      { ttl: 60_000 },
    );
    await client.wrap("long", () => "l", { ttl: 60_000 });
    await client.settled();
    expect((await client.getEntry("short"))?.ttlRemainingMs).toBe(1_000);
    clock.advance(1_001);
    expect(await client.get("short")).toBeUndefined();
    expect(await client.get("long")).toBe("l");
    await client.wrap(
      "graced",
      (ctx) => {
        ctx.setGrace(5_000);
        return "g";
      },
      { ttl: 1_000 },
    );
    await client.settled();
    clock.advance(2_000);
    let loads = 0;
    expect(await client.wrap("graced", () => `g${++loads}`, { ttl: 1_000, staleWhileRevalidate: true })).toBe("g");
  });

  it("ctx.skip returns the value without storing it and gives the lease back", async () => {
    const namespace = ns();
    const client = t.newClient({ namespace });
    const value = await client.wrap(
      "k",
      (ctx) => {
        ctx.skip();
        return "not cached";
      },
      { ttl: 60_000, leaseMs: 60_000 },
    );
    expect(value).toBe("not cached");
    await client.settled();
    expect(await client.has("k")).toBe(false);
    const other = t.newClient({ namespace });
    expect(await other.wrap("k", () => "computed", { ttl: 60_000, leaseWaitMs: 60_000 })).toBe("computed");
  });

  it("ctx.setTags refuses tags past the limits at once, as ctx.setTtl(-1) does, instead of an uncached value", async () => {
    const namespace = ns();
    const client = t.newClient({ namespace });
    const seventeen = Array.from({ length: 17 }, (_, i) => `t${i}`);
    for (const tags of [seventeen, [""], ["x".repeat(129)]]) {
      await expect(client.wrap("k", (ctx) => {
        ctx.setTags(tags);
        return 1;
      }, { ttl: 60_000 })).rejects.toMatchObject({ code: 3 });
    }
    expect(await client.wrap("k", (ctx) => {
      ctx.setTags([...seventeen.slice(0, 16), "t0"]);
      return 2;
    }, { ttl: 60_000 })).toBe(2);
    await client.settled();
    expect(client.wrapStats().writeFailures).toBe(0);
    expect(await client.get("k")).toBe(2);
  });

  it("@cached methods reach their context through wrapContext()", async () => {
    const namespace = ns();
    const client = t.newClient({ namespace });
    let calls = 0;
    class Users {
      @client.cached({ ttl: 60_000, key: (id: number) => `user:${id}` })
      async byId(id: number) {
        calls++;
        if (id === 0) wrapContext()?.skip();
        else wrapContext()?.setTtl(500);
        return { id };
      }
    }
    const users = new Users();
    expect(await users.byId(0)).toEqual({ id: 0 });
    expect(await users.byId(1)).toEqual({ id: 1 });
    await client.settled();
    expect(await client.has("user:0")).toBe(false);
    expect((await client.getEntry("user:1"))?.ttlRemainingMs).toBe(500);
    expect(wrapContext()).toBeUndefined();
    expect(calls).toBe(2);
  });

  it("a context outlives no loader run: wrapContext() is undefined after it, and a kept ctx's setters throw", async () => {
    const namespace = ns();
    const client = t.newClient({ namespace });
    let later: Promise<{ seen: unknown; setTtl: unknown; skip: unknown }> | undefined;
    let kept: { setTtl(ms: number): void; skip(): void } | undefined;
    await client.wrap("k", (ctx) => {
      kept = ctx;
      later = new Promise((resolve) => setTimeout(() => {
        const seen = wrapContext();
        const attempt = (fn: () => void) => { try { fn(); return "no error"; } catch (err) { return (err as Error).message; } };
        resolve({ seen, setTtl: attempt(() => kept!.setTtl(1)), skip: attempt(() => kept!.skip()) });
      }, 50));
      expect(wrapContext()).toBe(ctx);
      return "v";
    }, { ttl: 60_000 });
    const after = await later!;
    expect(after.seen).toBeUndefined();
    expect(after.setTtl).toMatch(/after its loader run ended/);
    expect(after.skip).toMatch(/after its loader run ended/);
    let keptMany: ((key: string) => { skip(): void }) | undefined;
    await client.wrapMany(["a"], (missing, ctx) => {
      keptMany = ctx;
      return Object.fromEntries(missing.map((key) => [key, 1]));
    }, { ttl: 60_000 });
    expect(() => keptMany!("a").skip()).toThrow(/after its loader run ended/);
    await client.settled();
    expect(await client.get("k")).toBe("v");
  });

  it("wrapMany gives each missing key its own context", async () => {
    const namespace = ns();
    const client = t.newClient({ namespace });
    const result = await client.wrapMany(
      ["a", "b", "c"],
      (missing, ctx) => {
        ctx("a").setTtl(1_000);
        ctx("b").skip();
        return Object.fromEntries(missing.map((key) => [key, key.toUpperCase()]));
      },
      { ttl: 60_000 },
    );
    expect(result).toEqual(new Map([["a", "A"], ["b", "B"], ["c", "C"]]));
    expect(await client.has("b")).toBe(false);
    expect((await client.getEntry("a"))?.ttlRemainingMs).toBe(1_000);
    expect((await client.getEntry("c"))?.ttlRemainingMs).toBe(60_000);
  });

  it("eager refresh: hits late in the TTL are served at once and start one refresh across all clients", async () => {
    const namespace = ns();
    const clients = [
      ...Array.from({ length: 3 }, () => t.newClient({ namespace, localTier: { clock: clock.now } })),
      ...Array.from({ length: 3 }, () => t.newClient({ namespace })),
    ];
    await t.client.set("marker", 0, { namespace });
    for (const c of clients.slice(0, 3)) await warmLocal(c, "marker", namespace);
    await expectOneEagerRefresh(clients, { ttl: 10_000, eagerRefresh: 0.8 }, () => clock.advance(8_500), 50);
    expect(await t.client.get("k", { namespace })).toBe("v2");
    expect((await t.client.getEntry("k", { namespace }))?.ttlRemainingMs).toBe(10_000);
  });

  it("eager refresh: a refresh that fails keeps the current value until it expires", async () => {
    const namespace = ns();
    const client = t.newClient({ namespace, onBackgroundError: () => {} });
    const options = { ttl: 10_000, eagerRefresh: 0.5 };
    await client.wrap("k", () => "good", options);
    await client.settled();
    clock.advance(6_000);
    const failing = async (): Promise<string> => {
      throw new Error("source down");
    };
    expect(await client.wrap("k", failing, options)).toBe("good");
    await client.settled();
    expect(client.wrapStats().refreshFailures).toBe(1);
    expect(await client.get("k")).toBe("good");
    clock.advance(4_001);
    await expect(client.wrap("k", failing, options)).rejects.toThrow("source down");
  });

  it("refuses an eagerRefresh outside (0, 1) or without a ttl", async () => {
    await expect(t.client.wrap("k", () => 1, { eagerRefresh: 0.5 })).rejects.toThrow(/needs a ttl/);
    await expect(t.client.wrap("k", () => 1, { ttl: 1_000, eagerRefresh: 1 })).rejects.toThrow(/eagerRefresh/);
  });
});
