import { describe, expect, it } from "vitest";
import { RpcError, statusName } from "../../core/rpc-error.js";
import { startTestServer } from "../helpers/test-server.js";

describe("a Set over the server's message limit because of its key (real server)", () => {
  it("fails its own write only, as a unary Set would, not the other calls of the client's session", async () => {
    // A valid configuration: max-message-bytes exceeds max-value-bytes + max-key-bytes + 1 KiB.
    const t = await startTestServer({ storage: "memory", maxKeyBytes: 32 * 1024, maxValueBytes: 20 * 1024, maxMessageBytes: 60 * 1024 });
    try {
      const errors: unknown[] = [];
      const c = t.newClient({ onBackgroundError: (error) => errors.push(error) });
      const holder = t.newClient();
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      let leased!: () => void;
      const holding = new Promise<void>((resolve) => (leased = resolve));
      const held = holder.wrap("held", async () => {
        leased();
        await gate;
        return "holder's value";
      }, { namespace: "longkey", ttl: 60_000 });
      await holding;
      let waiterLoads = 0;
      const waiter = c.wrap("held", async () => {
        waiterLoads++;
        return "waiter's value";
      }, { namespace: "longkey", ttl: 60_000, leaseWaitMs: 20_000 });
      await new Promise((resolve) => setTimeout(resolve, 200)); // the waiter's GetOrLease is on c's stream, waiting on the server
      // A 30,000-byte key (allowed: max-key-bytes is 32 KiB) and a 40 KB value: value + 8 KiB < 60 KiB, so it goes on the stream,
      // but the message (key + value) is ~70 KB, over the server's 60 KiB limit.
      const longKey = "k".repeat(30_000);
      const big = "x".repeat(40_000);
      expect(await c.wrap(longKey, async () => big, { namespace: "longkey", ttl: 60_000 })).toBe(big);
      await c.settled();
      open();
      expect(await held).toBe("holder's value");
      const got = await waiter;
      expect({ waiter: got, waiterLoads, errors: errors.map((err) => (err instanceof RpcError ? `${statusName(err.code)}: ${err.details}` : String(err))) }).toEqual({
        waiter: "holder's value",
        waiterLoads: 0,
        errors: [expect.stringMatching(/^(RESOURCE_EXHAUSTED|INVALID_ARGUMENT)/)],
      });
    } finally {
      await t.dispose();
    }
  }, 30_000);
});
