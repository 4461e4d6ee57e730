import { afterEach, describe, expect, it } from "vitest";
import { CacheClient, Status } from "../../client/index.js";
import { parseTokens } from "../../server/security/tokens.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";
import { eventually } from "../helpers/eventually.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads until the local tier serves `key` twenty times in a row (so not in a short window before the Watch stream fails). */
async function servedLocally(client: CacheClient, key: string, namespace: string): Promise<void> {
  let inARow = 0;
  await eventually(async () => {
    await client.get(key, { namespace });
    const local = (await client.getEntry(key, { namespace }))?.tier === "client";
    inARow = local ? inARow + 1 : 0;
    if (local) await sleep(20);
    return inARow >= 20;
  });
}

const TEAM_A = "team-a-token-0123456789abcdef";

describe("namespaces the local tier cannot watch", () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.dispose();
    t = undefined;
  });

  it("a namespace this token may not read is never served locally and leaves other namespaces served locally", async () => {
    t = await startTestServer({ storage: "memory", tokens: parseTokens(JSON.stringify([{ token: TEAM_A, namespaces: ["team-a.*"], rights: ["read", "write"] }])) });
    const client = t.newClient({ token: TEAM_A, localTier: true });
    await client.set("k", "users", { namespace: "team-a.users" });
    await servedLocally(client, "k", "team-a.users");

    await expect(client.get("k", { namespace: "team-b" })).rejects.toMatchObject({ code: Status.PERMISSION_DENIED });
    await expect(client.getEntry("k", { namespace: "team-b" })).rejects.toMatchObject({ code: Status.PERMISSION_DENIED });
    await expect(client.wrap("k", async () => "computed", { namespace: "team-b" })).rejects.toMatchObject({ code: Status.PERMISSION_DENIED });
    expect(client.getLocal("k", { namespace: "team-b" })).toBeUndefined();

    await servedLocally(client, "k", "team-a.users");
    await client.set("k", "orders", { namespace: "team-a.orders" });
    await servedLocally(client, "k", "team-a.orders");
    expect(client.getLocal("k", { namespace: "team-a.users" })).toBe("users");
  });

  it("an invalid namespace is refused before any Watch and leaves other namespaces served locally", async () => {
    t = await startTestServer({ storage: "memory" });
    const client = t.newClient({ localTier: true });
    await client.set("k", "v");
    await servedLocally(client, "k", "default");
    for (const namespace of ["bad namespace", "-x", "x".repeat(65)]) {
      await expect(client.get("k", { namespace })).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
      expect(() => client.getLocal("k", { namespace })).toThrow(/invalid namespace/);
    }
    await servedLocally(client, "k", "default");
  });

  it('"" is the default namespace, for the client and for a call, and is served locally', async () => {
    t = await startTestServer({ storage: "memory" });
    const empty = t.newClient({ namespace: "", localTier: true });
    await empty.set("k", "in default");
    expect(await t.client.get("k", { namespace: "default" })).toBe("in default");
    await servedLocally(empty, "k", "");
    expect(empty.getLocal("k")).toBe("in default");

    const named = t.newClient({ namespace: "other", localTier: true });
    await servedLocally(named, "k", "");
    expect(named.getLocal("k", { namespace: "default" })).toBe("in default");
  });
});
