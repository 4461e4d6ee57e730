import { afterEach, describe, expect, it } from "vitest";
import { CacheClient } from "../../client/index.js";
import { startServerChild, type ServerChild } from "../helpers/server-child.js";

/**
 * Every LeaseSession stream adds an "abort" listener to the server's one `closing` AbortSignal (lease-session.ts:
 * options.closing?.addEventListener). With more than 10 clients using wrap at once, Node prints
 * "MaxListenersExceededWarning: Possible EventTarget memory leak detected" on the server's stderr: a false leak alarm
 * in production logs for an ordinary load (the listeners are removed when streams end).
 */
let child: ServerChild | undefined;
afterEach(async () => {
  await child?.stop().catch(() => {});
  child = undefined;
});

describe("a server with 12 clients' LeaseSession streams open at once", () => {
  it("prints no memory-leak warning", async () => {
    child = await startServerChild(["--storage", "memory"]);
    const clients = Array.from({ length: 12 }, () => new CacheClient({ address: child!.address, timeoutMs: 5_000 }));
    try {
      await Promise.all(clients.map((c, i) => c.wrap(`k${i}`, async () => (await new Promise((r) => setTimeout(r, 200)), i), { namespace: "ml", ttl: 60_000 })));
      await new Promise((r) => setTimeout(r, 300));
      expect(child.stderr()).not.toMatch(/MaxListenersExceededWarning/);
    } finally {
      for (const c of clients) c.close();
    }
  }, 30_000);
});
