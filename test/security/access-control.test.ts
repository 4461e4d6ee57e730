import { callContextOf } from "../helpers/call-context.js";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { credentials, Metadata } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type CallContext, type ServiceClient } from "../../core/grpc-adapter.js";
import { RpcError, Status, statusName } from "../../core/rpc-error.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { ConfigError, resolveConfig } from "../../server/config.js";
import { AccessControl, CACHE_SERVICE_RULES } from "../../server/security/access-control.js";
import { parseTokens, type Right } from "../../server/security/tokens.js";
import { startTestServer, tempDir, type TestServer } from "../helpers/test-server.js";

const ADMIN = "admin-token-0123456789abcdef";
const WRITER = "writer-token-0123456789abcdef"; // read + write on team-a and shared-*
const READER = "reader-token-0123456789abcdef"; // read on team-a
const NS_ADMIN = "nsadmin-token-0123456789abcdef"; // admin on team-a
const DEFAULT_READER = "default-reader-0123456789abcdef"; // read on the default namespace
const BAD = "unknown-token-0123456789abcdef";
const ALL_TOKENS = [ADMIN, WRITER, READER, NS_ADMIN, DEFAULT_READER, BAD];

const TOKENS = [
  { token: ADMIN, namespaces: ["*"], rights: ["read", "write", "admin"] },
  { token: WRITER, namespaces: ["team-a", "shared-*"], rights: ["read", "write"] },
  { token: READER, namespaces: ["team-a"], rights: ["read"] },
  { token: NS_ADMIN, namespaces: ["team-a"], rights: ["admin"] },
  { token: DEFAULT_READER, namespaces: ["default"], rights: ["read"] },
];

type Client = ServiceClient<typeof CacheService>;
type Outcome = Status | "allowed";

function auth(token: string | undefined, ...more: string[]): Metadata {
  const metadata = new Metadata();
  if (token !== undefined) metadata.add("authorization", `Bearer ${token}`);
  for (const value of more) metadata.add("authorization", value);
  return metadata;
}

/** The status a call ended with (OK when it succeeded), and every status message seen. */
async function outcome(run: () => Promise<unknown>): Promise<{ code: Status; details: string }> {
  try {
    await run();
    return { code: Status.OK, details: "" };
  } catch (err) {
    if (err instanceof RpcError) return { code: err.code, details: err.details };
    throw err;
  }
}

async function drain(messages: AsyncIterable<unknown>, limit = Infinity): Promise<unknown[]> {
  const seen: unknown[] = [];
  for await (const message of messages) {
    seen.push(message);
    if (seen.length >= limit) break;
  }
  return seen;
}

const value = new TextEncoder().encode('"v"');
const entry = { key: "k", value, contentType: "application/json" };

/** The answers of a LeaseSession stream carrying `calls`; a call answered with an error throws it as an RpcError. */
async function sessionAnswers(c: Client, calls: { namespace: string; key: string }[], metadata: Metadata): Promise<unknown[]> {
  const requests = calls.map(({ namespace, key }, i) => ({ id: BigInt(i + 1), call: { case: "getOrLease" as const, value: { namespace, key, leaseMs: 1000, waitMs: 0 } } }));
  const answers: unknown[] = [];
  for await (const response of c.leaseSession(requests, { metadata })) {
    if (response.result.case === "error") throw new RpcError(response.result.value.code, response.result.value.message);
    if (response.result.case !== "ready") answers.push(response.result.value);
  }
  return answers;
}

/** One call of every CacheService RPC, acting on `namespace`. */
const CALLS: Record<string, (c: Client, namespace: string, metadata: Metadata) => Promise<unknown>> = {
  Get: (c, namespace, metadata) => c.get({ namespace, key: "k" }, { metadata }),
  Has: (c, namespace, metadata) => c.has({ namespace, key: "k" }, { metadata }),
  GetMany: (c, namespace, metadata) => c.getMany({ namespace, keys: ["k"] }, { metadata }),
  StreamGet: (c, namespace, metadata) => drain(c.streamGet([{ namespace, keys: ["k"] }], { metadata })),
  Set: (c, namespace, metadata) => c.set({ namespace, ...entry }, { metadata }),
  Delete: (c, namespace, metadata) => c.delete({ namespace, key: "k" }, { metadata }),
  Touch: (c, namespace, metadata) => c.touch({ namespace, key: "k", ttlMs: 60_000n }, { metadata }),
  SetMany: (c, namespace, metadata) => c.setMany({ namespace, entries: [entry] }, { metadata }),
  DeleteMany: (c, namespace, metadata) => c.deleteMany({ namespace, keys: ["k"] }, { metadata }),
  StreamSet: (c, namespace, metadata) => c.streamSet([{ namespace, entries: [entry] }], { metadata }),
  Clear: (c, namespace, metadata) => c.clear({ namespace }, { metadata }),
  Stats: (c, namespace, metadata) => c.stats({ namespace }, { metadata }),
  // RPCs whose handlers are still being written: only their refusals are pinned down here.
  Watch: (c, namespace, metadata) => drain(c.watch({ cursors: [{ namespace }] }, { metadata, timeoutMs: 500 }), 1),
  GetOrLease: (c, namespace, metadata) => c.getOrLease({ namespace, key: "k", leaseMs: 1000, waitMs: 0 }, { metadata }),
  ReleaseLease: (c, namespace, metadata) => c.releaseLease({ namespace, key: "k", leaseToken: "x" }, { metadata }),
  InvalidateTags: (c, namespace, metadata) => c.invalidateTags({ namespace, tags: ["t"] }, { metadata }),
  LeaseSession: (c, namespace, metadata) => sessionAnswers(c, [{ namespace, key: "k" }], metadata),
};
const SETTLED = new Set(["Get", "Has", "GetMany", "StreamGet", "Set", "Delete", "Touch", "SetMany", "DeleteMany", "StreamSet", "Clear", "Stats", "InvalidateTags", "LeaseSession"]);

/** A token holding `right` (alone or with others), but only on team-a. */
const HOLDER: Record<Right, string> = { read: READER, write: WRITER, admin: NS_ADMIN };

describe("access control", () => {
  let t: TestServer;
  let client: Client;
  const details: string[] = [];

  beforeAll(async () => {
    t = await startTestServer({ storage: "memory", tokens: parseTokens(JSON.stringify(TOKENS)) });
    client = createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 5000 });
  });
  afterAll(async () => {
    client.close();
    await t.dispose();
    // No status message ever carries a token.
    for (const text of details) for (const token of ALL_TOKENS) expect(text).not.toContain(token);
  });

  async function check(method: string, token: string | undefined, namespace: string, expected: Outcome): Promise<void> {
    const result = await outcome(() => CALLS[method]!(client, namespace, auth(token)));
    details.push(result.details);
    const label = `${method} as ${token ?? "nobody"} on ${JSON.stringify(namespace)}: ${statusName(result.code)} ${result.details}`;
    if (expected === "allowed") expect([Status.UNAUTHENTICATED, Status.PERMISSION_DENIED], label).not.toContain(result.code);
    else expect(statusName(result.code), label).toBe(statusName(expected));
  }

  it("has a rule for every CacheService RPC", () => {
    expect(CacheService.methods.map((m) => m.name).filter((name) => !Object.hasOwn(CACHE_SERVICE_RULES, name))).toEqual([]);
    expect(Object.keys(CALLS).sort()).toEqual(CacheService.methods.map((m) => m.name).sort());
  });

  describe.each(CacheService.methods.map((m) => [m.name, CACHE_SERVICE_RULES[m.name]!.right] as const))("%s (needs %s)", (method, right) => {
    const allowed: Outcome = SETTLED.has(method) ? Status.OK : "allowed";
    it("without a token: UNAUTHENTICATED", () => check(method, undefined, "team-a", Status.UNAUTHENTICATED));
    it("with an unknown token: UNAUTHENTICATED", () => check(method, BAD, "team-a", Status.UNAUTHENTICATED));
    it("with the right on another namespace: PERMISSION_DENIED", () => check(method, HOLDER[right], "team-b", Status.PERMISSION_DENIED));
    it(`with a read-only token: ${right === "read" ? "allowed" : "PERMISSION_DENIED"}`, () =>
      check(method, READER, "team-a", right === "read" ? allowed : Status.PERMISSION_DENIED));
    it("with the admin token: allowed", () => check(method, ADMIN, "team-a", allowed));
  });

  it("matches exact names and prefixes, and treats an empty namespace as default", async () => {
    await check("Set", WRITER, "shared-x", Status.OK);
    await check("Set", WRITER, "shared", Status.PERMISSION_DENIED);
    await check("Set", WRITER, "team-a2", Status.PERMISSION_DENIED);
    await check("Get", DEFAULT_READER, "", Status.OK);
    await check("Get", DEFAULT_READER, "default", Status.OK);
    await check("Get", READER, "", Status.PERMISSION_DENIED);
  });

  it("Stats of every namespace needs admin on *", async () => {
    await check("Stats", NS_ADMIN, "team-a", Status.OK);
    await check("Stats", NS_ADMIN, "", Status.PERMISSION_DENIED);
    await check("Stats", ADMIN, "", Status.OK);
    await check("Clear", NS_ADMIN, "team-a", Status.OK);
  });

  it("accepts only one well-formed Bearer header", async () => {
    const get = (metadata: Metadata) => outcome(() => client.get({ namespace: "team-a", key: "k" }, { metadata }));
    const raw = (...values: string[]) => auth(undefined, ...values);
    expect((await get(raw(`bearer ${READER}`))).code).toBe(Status.OK);
    for (const metadata of [raw(`Basic ${READER}`), raw(READER), raw(`Bearer ${READER} extra`), raw("Bearer "), raw(`Bearer ${READER}, Bearer ${ADMIN}`)]) {
      const result = await get(metadata);
      details.push(result.details);
      expect(result.code).toBe(Status.UNAUTHENTICATED);
    }
  });

  it("checks every message of a stream: a later batch naming a forbidden namespace ends the call", async () => {
    await outcome(() => client.set({ namespace: "team-b", key: "k", value, contentType: "application/json" }, { metadata: auth(ADMIN) }));
    const seen: unknown[] = [];
    const stream = client.streamGet([{ namespace: "team-a", keys: ["k"] }, { namespace: "team-b", keys: ["k"] }], { metadata: auth(READER) });
    const result = await outcome(async () => {
      for await (const message of stream) seen.push(message);
    });
    expect(statusName(result.code)).toBe("PERMISSION_DENIED");
    expect(result.details).toBe('this token may not read namespace "team-b"');
    expect(seen).toHaveLength(1); // the allowed first batch was answered, the second never

    const write = await outcome(() =>
      client.streamSet(
        [
          { namespace: "shared-1", entries: [{ ...entry, key: "first" }] },
          { namespace: "team-b", entries: [{ ...entry, key: "second" }] },
        ],
        { metadata: auth(WRITER) },
      ),
    );
    expect(statusName(write.code)).toBe("PERMISSION_DENIED");
    const read = (namespace: string, key: string) => client.has({ namespace, key }, { metadata: auth(ADMIN) });
    expect((await read("shared-1", "first")).found).toBe(true);
    expect((await read("team-b", "second")).found).toBe(false);
  });

  it("checks every call a LeaseSession carries on its own: a forbidden one is answered PERMISSION_DENIED and the stream goes on", async () => {
    const requests = ["team-a", "team-b", "team-a"].map((namespace, i) => ({ id: BigInt(i + 1), call: { case: "getOrLease" as const, value: { namespace, key: `k${i}`, leaseMs: 1000, waitMs: 0 } } }));
    const answers = new Map<bigint, string>();
    for await (const response of client.leaseSession(requests, { metadata: auth(WRITER) })) {
      if (response.result.case === "error") answers.set(response.id, `${statusName(response.result.value.code)} ${response.result.value.message}`);
      else if (response.result.case !== "ready") answers.set(response.id, String(response.result.case));
    }
    expect(Object.fromEntries(answers)).toEqual({ 1: "getOrLease", 2: 'PERMISSION_DENIED this token may not write namespace "team-b"', 3: "getOrLease" });
    expect(statusName((await outcome(() => sessionAnswers(client, [{ namespace: "team-a", key: "k" }], auth(READER)))).code)).toBe("PERMISSION_DENIED");
  });

  it("checks a stream that sends no message at all", async () => {
    expect(statusName((await outcome(() => client.streamSet([], { metadata: auth(undefined) }))).code)).toBe("UNAUTHENTICATED");
    expect(statusName((await outcome(() => client.streamSet([], { metadata: auth(READER) }))).code)).toBe("PERMISSION_DENIED");
    expect(statusName((await outcome(() => drain(client.streamGet([], { metadata: auth(BAD) })))).code)).toBe("UNAUTHENTICATED");
  });
});

describe("AccessControl", () => {
  const grants = parseTokens(JSON.stringify(TOKENS));
  const context = (token: string): CallContext => callContextOf(new AbortController().signal, auth(token));
  const refusal = (run: () => void) => {
    try {
      run();
    } catch (err) {
      return err instanceof RpcError ? statusName(err.code) : err;
    }
    return "OK";
  };

  it("refuses a method that has no rule, whatever the token (fail closed)", () => {
    const access = new AccessControl(grants, { rules: { Set: CACHE_SERVICE_RULES.Set! } });
    expect(refusal(() => access.authorize(CacheService.method.get, undefined, context(ADMIN)))).toBe("PERMISSION_DENIED");
    expect(refusal(() => access.authorize(CacheService.method.set, undefined, context(ADMIN)))).toBe("OK");
    // Names that exist on every object are not rules.
    const toString = { ...CacheService.method.get, name: "toString" };
    expect(refusal(() => new AccessControl(grants).authorize(toString, undefined, context(ADMIN)))).toBe("PERMISSION_DENIED");
    expect(refusal(() => access.authorize(CacheService.method.get, undefined, context(BAD)))).toBe("UNAUTHENTICATED");
  });

  it("lets the table be extended", () => {
    const access = new AccessControl(grants, { rules: { ...CACHE_SERVICE_RULES, Lease: CACHE_SERVICE_RULES.Set! } });
    const lease = { ...CacheService.method.set, name: "Lease" };
    expect(refusal(() => access.authorize(lease, { namespace: "team-a" } as never, context(WRITER)))).toBe("OK");
    expect(refusal(() => access.authorize(lease, { namespace: "team-a" } as never, context(READER)))).toBe("PERMISSION_DENIED");
  });
});

describe("the tokens file", () => {
  const secret = "s3cret-token-value-0123456789";
  const errorOf = (json: string) => {
    try {
      parseTokens(json);
    } catch (err) {
      return (err as Error).message;
    }
    return "accepted";
  };

  it("keeps SHA-256 digests, not tokens", () => {
    const [grant] = parseTokens(JSON.stringify([{ token: secret, namespaces: ["a"], rights: ["read"] }]));
    expect(grant!.digest).toHaveLength(32);
    expect(JSON.stringify(grant)).not.toContain(secret);
    expect(Object.values(grant!).some((field) => field === secret)).toBe(false);
  });

  it("refuses malformed entries without quoting the token", () => {
    const cases: [unknown, RegExp][] = [
      [`[{"token": "${secret}", `, /not valid JSON/],
      [[], /non-empty JSON array/],
      [{ token: secret }, /non-empty JSON array/],
      [[{ token: "short", namespaces: ["a"], rights: ["read"] }], /#1: "token" must be 16 to 4096 visible ASCII/],
      [[{ token: `${secret} x`, namespaces: ["a"], rights: ["read"] }], /visible ASCII/],
      [[{ token: secret, namespaces: [], rights: ["read"] }], /"namespaces" must be a non-empty list/],
      [[{ token: secret, namespaces: ["a b"], rights: ["read"] }], /namespace pattern "a b"/],
      [[{ token: secret, namespaces: ["*a"], rights: ["read"] }], /namespace pattern "\*a"/],
      [[{ token: secret, namespaces: ["a"], rights: ["root"] }], /"rights" must be a non-empty list of "read", "write", "admin"/],
      [[{ token: secret, namespace: ["a"], rights: ["read"] }], /unknown field "namespace"/],
      [[{ token: secret, namespaces: ["a"], rights: ["read"] }, { token: secret, namespaces: ["b"], rights: ["write"] }], /#2 repeats the token of entry #1/],
    ];
    for (const [input, message] of cases) {
      const text = errorOf(typeof input === "string" ? input : JSON.stringify(input));
      expect(text).toMatch(message);
      expect(text).not.toContain(secret);
    }
  });

  it("comes from --tokens-file or TIERCACHE_TOKENS, and a bad one stops start-up with one line", () => {
    const dir = tempDir();
    try {
      const file = join(dir.path, "tokens.json");
      writeFileSync(file, JSON.stringify(TOKENS));
      expect(resolveConfig(["--tokens-file", file], {}).tokens).toHaveLength(TOKENS.length);
      expect(resolveConfig([], { TIERCACHE_TOKENS: JSON.stringify(TOKENS) }).tokens).toHaveLength(TOKENS.length);
      expect(resolveConfig([], { TIERCACHE_TOKENS: `@${file}` }).tokens).toHaveLength(TOKENS.length);

      writeFileSync(file, `[{"token": "${secret}", "namespaces": ["a"], "rights": ["read"],}]`);
      const bad = (() => {
        try {
          resolveConfig(["--tokens-file", file], {});
        } catch (err) {
          return err;
        }
      })();
      expect(bad).toBeInstanceOf(ConfigError);
      expect((bad as ConfigError).message).toMatch(/^invalid --tokens-file: tokens file ".*tokens\.json": the tokens are not valid JSON/);
      expect((bad as ConfigError).message).not.toContain(secret);
      expect(() => resolveConfig([], { TIERCACHE_TOKENS: `[{"token":"${secret}"}]` })).toThrow(/^invalid TIERCACHE_TOKENS: token entry #1: "namespaces"/);
      expect(() => resolveConfig(["--tokens-file", join(dir.path, "missing.json")], {})).toThrow(/cannot read the tokens file .*\(ENOENT\)/);
    } finally {
      dir.remove();
    }
  });
});
