import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AttemptEnd } from "../../server/tiers/attempt-end.js";
import { dropLateCommands, issueIn } from "../../server/tiers/late-commands.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";

/**
 * late-commands.ts against real ioredis and a real redis-server: a command
 * written after its attempt ended is written as DBSIZE: its reply is a
 * count of keys, and Redis state is untouched; one written before is
 * written as itself. A
 * client that is not connected yet holds commands in its offline queue and
 * writes them later, which stands in for every late write of ioredis.
 */
let redis: TestRedis;
let raw: Redis;
beforeAll(async () => {
  redis = await startTestRedis({ args: [] });
  raw = new Redis(redis.url);
});
afterAll(async () => {
  raw?.disconnect();
  await redis?.stop();
});

interface Scripted {
  lcSet(key: string, value: string): Promise<unknown>;
}
const SET_LUA = "redis.call('SET', KEYS[1], ARGV[1]) return 1";

const clients: Redis[] = [];
/** A prepared client; `late`: not connected yet, with an offline queue (commands are written once it connects). */
function client(options: { late?: boolean; autoPipelining?: boolean } = {}): Redis & Scripted {
  const c = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: options.late ?? false, enableAutoPipelining: options.autoPipelining ?? false });
  dropLateCommands(c);
  c.defineCommand("lcSet", { numberOfKeys: 1, lua: SET_LUA });
  clients.push(c);
  return c as Redis & Scripted;
}
afterAll(() => {
  for (const c of clients) c.disconnect();
});

/** Resolves once `c` is ready (sending a command to a lazy client starts connecting it). */
function ready(c: Redis): Promise<unknown> {
  return c.status === "ready" ? Promise.resolve() : new Promise((resolve) => c.once("ready", resolve));
}

/** Issues `send` inside a new attempt, then ends the attempt at once (before anything was read back). */
function issueAndEnd<T>(send: () => Promise<T>): Promise<T> {
  const attempt = new AttemptEnd();
  const sent = issueIn(attempt, send);
  attempt.end();
  return sent;
}

describe("dropLateCommands", () => {
  it("writes a command queued past its attempt's end as DBSIZE", async () => {
    const c = client({ late: true });
    const reply = issueAndEnd(() => c.set("late:plain", "v"));
    await ready(c);
    expect(typeof (await reply)).toBe("number"); // DBSIZE
    expect(await raw.get("late:plain")).toBeNull();
  });

  it("writes a command whose attempt is still running as itself, and leaves commands of no attempt alone", async () => {
    const c = client({ late: true });
    const attempt = new AttemptEnd();
    const inAttempt = issueIn(attempt, () => c.set("late:live", "v"));
    const outside = c.set("late:outside", "v");
    await ready(c);
    expect(await inAttempt).toBe("OK");
    expect(await outside).toBe("OK");
    expect(await raw.get("late:live")).toBe("v");
    expect(await raw.get("late:outside")).toBe("v");
  });

  it("does not touch a command written before its attempt ended", async () => {
    const c = client();
    await c.connect();
    expect(await issueAndEnd(() => c.set("late:before", "v"))).toBe("OK");
    expect(await raw.get("late:before")).toBe("v");
  });

  it("covers Lua scripts of defineCommand, also when defined before the client was prepared", async () => {
    const c = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: true, enableAutoPipelining: false }) as Redis & Scripted;
    clients.push(c);
    c.defineCommand("lcSet", { numberOfKeys: 1, lua: SET_LUA });
    dropLateCommands(c);
    const reply = issueAndEnd(() => c.lcSet("late:script", "v"));
    await ready(c);
    expect(typeof (await reply)).toBe("number"); // DBSIZE
    expect(await raw.get("late:script")).toBeNull();
    expect(await c.lcSet("late:script", "w")).toBe(1); // the socket was not marked as having the script: EVAL, not a failing EVALSHA
    expect(await raw.get("late:script")).toBe("w");
  });

  it("covers auto-pipelined commands and scripts, written at the next turn of the event loop", async () => {
    const c = client({ autoPipelining: true });
    await c.connect();
    const plain = issueAndEnd(() => c.set("late:auto", "v"));
    const script = issueAndEnd(() => c.lcSet("late:auto-script", "v"));
    expect(typeof (await plain)).toBe("number"); // DBSIZE
    expect(typeof (await script)).toBe("number"); // DBSIZE
    expect(await raw.get("late:auto")).toBeNull();
    expect(await raw.get("late:auto-script")).toBeNull();
    expect(await issueIn(new AttemptEnd(), () => c.set("late:auto", "w"))).toBe("OK");
    expect(await raw.get("late:auto")).toBe("w");
  });

  it("writes MULTI/EXEC past the attempt's end as DBSIZEs, MULTI included, leaving no transaction open", async () => {
    const c = client({ late: true });
    const tx = issueAndEnd(() => c.multi().set("late:tx", "v").incr("late:tx-n").exec());
    await ready(c);
    await tx.catch(() => undefined); // its outcome is nobody's: the guard has given up on it
    expect(await raw.get("late:tx")).toBeNull();
    expect(await raw.get("late:tx-n")).toBeNull();
    expect(await c.set("late:tx-after", "v")).toBe("OK"); // "QUEUED" if a real MULTI had gone out
    const live = await issueIn(new AttemptEnd(), () => c.multi().set("late:tx", "w").exec());
    expect(live).toEqual([[null, "OK"]]);
  });

  it("covers the NOSCRIPT resend, which Script.js creates later, from the reply", async () => {
    const c = client();
    await c.connect();
    await c.lcSet("late:noscript", "loaded"); // EVAL: this socket now sends EVALSHA
    await raw.script("FLUSH");
    const ended = issueAndEnd(() => c.lcSet("late:noscript", "late")); // EVALSHA goes out, then the attempt ends
    expect(typeof (await ended)).toBe("number"); // DBSIZE
    expect(await raw.get("late:noscript")).toBe("loaded");

    await raw.script("FLUSH");
    const running = issueIn(new AttemptEnd(), () => c.lcSet("late:noscript", "live"));
    expect(await running).toBe(1); // the resend of a running attempt is written as itself
    expect(await raw.get("late:noscript")).toBe("live");
  });
});
