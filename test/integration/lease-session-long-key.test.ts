import { describe, expect, it } from "vitest";
import { RpcError, statusName } from "../../core/rpc-error.js";
import { waiterBehindHeldLease } from "../helpers/lease-waiter.js";
import { startTestServer } from "../helpers/test-server.js";

describe("a Set over the server's message limit because of its key (real server)", () => {
  it("fails its own write only, as a unary Set would, not the other calls of the client's session", async () => {
    // A valid configuration: max-message-bytes exceeds max-value-bytes + max-key-bytes + 1 KiB.
    const t = await startTestServer({ storage: "memory", maxKeyBytes: 32 * 1024, maxValueBytes: 20 * 1024, maxMessageBytes: 60 * 1024 });
    try {
      const errors: unknown[] = [];
      const c = t.newClient({ onBackgroundError: (error) => errors.push(error) });
      const holder = t.newClient();
      const behind = await waiterBehindHeldLease(holder, c, "longkey");
      // A 30,000-byte key (allowed: max-key-bytes is 32 KiB) and a 40 KB value: the value alone is under the 60 KiB
      // message limit, the message (key + value, ~70 KB) is over it.
      const longKey = "k".repeat(30_000);
      const big = "x".repeat(40_000);
      expect(await c.wrap(longKey, async () => big, { namespace: "longkey", ttl: 60_000 })).toBe(big);
      await c.settled();
      expect({ ...(await behind.release()), errors: errors.map((err) => (err instanceof RpcError ? `${statusName(err.code)}: ${err.details}` : String(err))) }).toEqual({
        held: "holder's value",
        waited: "holder's value",
        waiterLoads: 0,
        errors: [expect.stringMatching(/^(RESOURCE_EXHAUSTED|INVALID_ARGUMENT)/)],
      });
    } finally {
      await t.dispose();
    }
  }, 30_000);
});
