import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheClient, RpcError, Status } from "../../client/index.js";
import { parseTokens } from "../../server/security/tokens.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const TENANT_A = "tenant-a-token-0123456789";
const TENANT_B = "tenant-b-token-0123456789";

/** A quota per access token: one tenant cannot take the namespaces or memory others need. */
describe("token quotas", () => {
  let t: TestServer;
  let a: CacheClient;
  let b: CacheClient;
  beforeAll(async () => {
    const tokens = parseTokens(
      JSON.stringify([
        { token: TENANT_A, namespaces: ["a.*"], rights: ["read", "write", "admin"], maxNamespaces: 3, maxBytes: "1MiB" },
        { token: TENANT_B, namespaces: ["b.*"], rights: ["read", "write", "admin"] },
      ]),
    );
    t = await startTestServer({ storage: "memory", tokens, maxMemoryBytes: 256 * 1024 ** 2 });
    a = t.newClient({ token: TENANT_A });
    b = t.newClient({ token: TENANT_B });
  });
  afterAll(async () => {
    await t?.dispose();
  });

  it("refuses a write that would start one namespace more than the token's quota, naming it", async () => {
    for (let i = 0; i < 3; i++) await a.set("k", i, { namespace: `a.n${i}` });
    const err = await a.set("k", 1, { namespace: "a.n3" }).catch((e: unknown) => e);
    expect(RpcError.is(err, Status.RESOURCE_EXHAUSTED)).toBe(true);
    expect((err as RpcError).details).toMatch(/quota of token #1: 3 namespaces/);
    await b.set("k", 1, { namespace: "b.n0" }); // another tenant is not affected
    await a.clear({ namespace: "a.n2" }); // an emptied namespace gives its place back
    await a.set("k", 1, { namespace: "a.n3" });
  });

  it("keeps the token's namespaces within its bytes, evicting its own entries, never another tenant's", async () => {
    const value = randomBytes(10 * 1024); // incompressible: stored as it is
    for (let i = 0; i < 100; i++) await b.set(`k${i}`, value, { namespace: "b.kept" });
    for (let i = 0; i < 500; i++) await a.set(`k${i}`, value, { namespace: "a.n0" });
    const [ownA] = await a.stats({ namespace: "a.n0" });
    const [ownB] = await b.stats({ namespace: "b.kept" });
    expect(ownA!.tiers[0]!.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(ownA!.tiers[0]!.entries).toBeLessThan(500);
    expect(ownB!.tiers[0]!.entries).toBe(100);
  });

  it("refuses a malformed quota in the tokens file", () => {
    expect(() => parseTokens(JSON.stringify([{ token: TENANT_A, namespaces: ["*"], rights: ["read"], maxNamespaces: 0 }]))).toThrow(/maxNamespaces/);
    expect(() => parseTokens(JSON.stringify([{ token: TENANT_A, namespaces: ["*"], rights: ["read"], maxBytes: "lots" }]))).toThrow(/maxBytes/);
  });
});
