import { afterEach, describe, expect, it } from "vitest";
import { CacheClient, RpcError, Status } from "../../client/index.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("client resilience", () => {
  const servers: TestServer[] = [];
  const clients: CacheClient[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    for (const s of servers.splice(0)) await s.dispose();
  });

  it("balances calls round-robin over several addresses", async () => {
    const [a, b] = [await startTestServer({ storage: "memory" }), await startTestServer({ storage: "memory" })];
    servers.push(a, b);
    const client = new CacheClient({ addresses: [a.server.address, b.server.address] });
    clients.push(client);
    for (let i = 0; i < 40; i++) await client.get(`k${i}`, { namespace: "rr" });
    const misses = async (s: TestServer) => (await s.client.stats({ namespace: "rr" }))[0]?.tiers[0]?.misses ?? 0;
    const [onA, onB] = [await misses(a), await misses(b)];
    expect(onA + onB).toBe(40);
    expect(onA).toBeGreaterThan(5);
    expect(onB).toBeGreaterThan(5);
  });

  it("refuses addresses that are not IPs, naming the problem", () => {
    expect(() => new CacheClient({ addresses: ["cache-a:50051", "cache-b:50051"] })).toThrow(/IP host:port/);
  });

  it("serves local copies while the service is unavailable only when configured to", async () => {
    const t = await startTestServer({ storage: "memory" });
    servers.push(t);
    const fallback = new CacheClient({ address: t.server.address, localTier: { serveStaleWhenUnavailable: true }, retryReads: false });
    const strict = new CacheClient({ address: t.server.address, localTier: true, retryReads: false });
    clients.push(fallback, strict);
    await t.client.set("k", "kept");
    for (const c of [fallback, strict]) {
      for (let i = 0; i < 100 && c.getLocal("k") === undefined; i++) {
        await c.get("k");
        await sleep(10);
      }
      expect(c.getLocal("k")).toBe("kept");
    }
    await t.stop();
    servers.pop();
    await sleep(100);
    expect(await fallback.get("k")).toBe("kept");
    const err = await strict.get("k").catch((e: unknown) => e);
    expect(RpcError.is(err, Status.UNAVAILABLE)).toBe(true);
  });
});
