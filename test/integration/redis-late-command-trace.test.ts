import dc from "node:diagnostics_channel";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AttemptEnd } from "../../server/tiers/attempt-end.js";
import { dropLateCommands, issueIn } from "../../server/tiers/late-commands.js";
import { startTestRedis, type TestRedis } from "../helpers/redis-server.js";

/*
 * ioredis's command tracing channel (`ioredis:command`, what APM/OTel subscribers read) sanitizes args by
 * command name (SET shows only its key): a late command must not carry its original args under another name,
 * or a late SET's value would be published in clear.
 */
let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis({ args: [] });
});
afterAll(async () => {
  await redis?.stop();
});

describe("tracing context of a late command", () => {
  it("does not expose the value of a late SET (a live SET shows only its key)", async () => {
    const seen: { command: string; args: string[] }[] = [];
    const channel = dc.tracingChannel("ioredis:command");
    const handlers = { start: (ctx: unknown) => void seen.push(ctx as { command: string; args: string[] }), end() {}, asyncStart() {}, asyncEnd() {}, error() {} };
    channel.subscribe(handlers);
    const live = new Redis(redis.url, { enableAutoPipelining: false });
    const c = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: true, enableAutoPipelining: false });
    dropLateCommands(live);
    dropLateCommands(c);
    try {
      await issueIn(new AttemptEnd(), () => live.set("trace:live", "secret-live"));
      const attempt = new AttemptEnd();
      const late = issueIn(attempt, () => c.set("trace:late", "secret-late")); // offline queue: written once connected
      attempt.end();
      expect(typeof (await late)).toBe("number"); // written as DBSIZE
      const liveSeen = seen.find((s) => s.args[0] === "trace:live")!;
      expect(liveSeen.args).toEqual(["trace:live", "?"]);
      expect(seen.flatMap((s) => s.args)).not.toContain("secret-late");
    } finally {
      channel.unsubscribe(handlers);
      c.disconnect();
      live.disconnect();
    }
  });
});
