import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CacheClient } from "../../client/index.js";
import { closedPort } from "../helpers/closed-port.js";
import { listeningAddress, runTiercache, type TiercacheProcess } from "../helpers/tiercache-process.js";

const BIN = new URL("../../bin/tiercache.js", import.meta.url).pathname;
const VERSION = (await import("../../package.json", { with: { type: "json" } })).default.version;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `tiercache <args>` to completion, as a shell script would. */
function cli(args: readonly string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe("the tiercache client commands, against a real server process", () => {
  let server: TiercacheProcess;
  let address: string;
  let client: CacheClient;
  const TOKEN = "cli-test-token-0123456789";

  beforeAll(async () => {
    const tokens = JSON.stringify([{ token: TOKEN, namespaces: ["*"], rights: ["read", "write", "admin"] }]);
    server = runTiercache(["serve", "--port", "0", "--storage", "memory"], { TIERCACHE_TOKENS: tokens });
    address = await listeningAddress(server);
    client = new CacheClient({ address, token: TOKEN });
  });
  afterAll(async () => {
    client?.close();
    server?.child.kill("SIGTERM");
    await server?.exit;
  });

  const env = () => ({ TIERCACHE_ADDRESS: address, TIERCACHE_TOKEN: TOKEN });

  it("set stores JSON when VALUE parses as JSON, else the string; get prints it as JSON", async () => {
    expect(await cli(["set", "obj", '{"a":[1,2]}'], env())).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(await client.get("obj")).toEqual({ a: [1, 2] });
    expect(await cli(["set", "word", "hello world"], env())).toMatchObject({ code: 0 });
    expect(await client.get("word")).toBe("hello world");

    expect(await cli(["get", "obj"], env())).toEqual({ code: 0, stdout: '{"a":[1,2]}\n', stderr: "" });
    expect(await cli(["get", "word"], env())).toEqual({ code: 0, stdout: '"hello world"\n', stderr: "" });
  });

  it("get of a miss prints nothing and exits 1", async () => {
    expect(await cli(["get", "never-written"], env())).toEqual({ code: 1, stdout: "", stderr: "" });
  });

  it("set --ttl gives the entry that TTL; --namespace and --address flags are honoured", async () => {
    expect((await cli(["set", "t", "1", "--ttl", "60000", "--namespace", "cli-ns", "--address", address], { TIERCACHE_TOKEN: TOKEN })).code).toBe(0);
    const entry = await client.getEntry("t", { namespace: "cli-ns" });
    expect(entry?.value).toBe(1);
    expect(entry?.ttlRemainingMs).toBeGreaterThan(50_000);
    expect(entry?.ttlRemainingMs).toBeLessThanOrEqual(60_000);
    expect(await client.get("t")).toBeUndefined();
    expect(await cli(["get", "t", "--namespace=cli-ns"], env())).toMatchObject({ code: 0, stdout: "1\n" });
  });

  it("set --tags tags the value; invalidate-tags hides it; a bad tag exits 2 with INVALID_ARGUMENT", async () => {
    expect((await cli(["set", "tagged", '"v"', "--tags", "org:7,user:1"], env())).code).toBe(0);
    expect(await client.get("tagged")).toBe("v");
    expect((await cli(["invalidate-tags", "user:1"], env())).code).toBe(0);
    expect(await client.get("tagged")).toBeUndefined();
    expect((await cli(["set", "pair", "1", "--tags", "red,blue"], env())).code).toBe(0);
    expect((await cli(["invalidate-tags", "green,blue"], env())).code).toBe(0); // commas separate tags, as in --tags
    expect(await client.get("pair")).toBeUndefined();
    const bad = await cli(["set", "k", "1", "--tags", "x".repeat(129)], env());
    expect(bad).toMatchObject({ code: 2, stdout: "" });
    expect(bad.stderr).toMatch(/^INVALID_ARGUMENT: /);
    expect((await cli(["invalidate-tags"], env())).code).toBe(2);
  });

  it("delete exits 0 when it removed the key, 1 when there was none", async () => {
    await client.set("gone", true);
    expect((await cli(["delete", "gone"], env())).code).toBe(0);
    expect(await client.has("gone")).toBe(false);
    expect((await cli(["delete", "gone"], env())).code).toBe(1);
  });

  it("failures print the status name and details on stderr and exit 2", async () => {
    const noToken = await cli(["get", "obj"], { TIERCACHE_ADDRESS: address, TIERCACHE_TOKEN: "" });
    expect(noToken.code).toBe(2);
    expect(noToken.stdout).toBe("");
    expect(noToken.stderr).toMatch(/^UNAUTHENTICATED: /);

    const empty = await cli(["get", ""], env());
    expect(empty).toMatchObject({ code: 2, stdout: "" });
    expect(empty.stderr).toMatch(/^INVALID_ARGUMENT: key must not be empty/);

    const down = await cli(["get", "obj", "--address", `127.0.0.1:${await closedPort()}`], { TIERCACHE_TOKEN: TOKEN });
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/^UNAVAILABLE: /);
  });

  it("a --timeout the SDK cannot carry fails with INVALID_ARGUMENT and exit 2, never a crash; a non-decimal one is a usage error", async () => {
    for (const timeout of ["1e15", "0", "2147483648"]) {
      const res = await cli(["get", "obj", "--timeout", timeout], env());
      expect(res).toMatchObject({ code: 2, stdout: "" });
      expect(res.stderr).toMatch(/^INVALID_ARGUMENT: --timeout must be/);
    }
    expect(await cli(["get", "obj", "--timeout", "-5"], env())).toMatchObject({ code: 2, stderr: expect.stringMatching(/invalid --timeout "-5"/) });
    expect(await cli(["get", "obj", "--timeout", "2147483647"], env())).toMatchObject({ code: 0, stdout: '{"a":[1,2]}\n' });
  });

  it("stats prints the namespace's statistics and the server-wide figures as JSON", async () => {
    const res = await cli(["stats", "--namespace", "cli-ns"], env());
    expect(res.code).toBe(0);
    const stats = JSON.parse(res.stdout) as { namespaces: Array<{ namespace: string; tiers: Array<{ tier: string; entries: number }> }>; server: Record<string, unknown> };
    expect(stats.namespaces.map((s) => s.namespace)).toEqual(["cli-ns"]);
    expect(stats.namespaces[0]!.tiers.find((t) => t.tier === "memory")?.entries).toBe(1);
    expect(Object.keys(stats.server).sort()).toEqual(["memoryBudgetBytes", "memoryBudgetEvictions", "memoryUsedBytes", "namespacesHeld"]);
    expect(stats.server["memoryUsedBytes"]).toBeGreaterThan(0);
  });

  it("health prints SERVING and exits 0; an unknown service fails with NOT_FOUND", async () => {
    expect(await cli(["health"], env())).toEqual({ code: 0, stdout: "SERVING\n", stderr: "" });
    expect(await cli(["health", "tiercache.v1.CacheService"], env())).toMatchObject({ code: 0, stdout: "SERVING\n" });
    const unknown = await cli(["health", "no.such.Service"], env());
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^NOT_FOUND: /);
  });

  it("watch prints change events as JSON lines until SIGTERM, then exits 0", async () => {
    const watch = spawn(process.execPath, [BIN, "watch", "--namespace", "watched"], { env: { ...process.env, ...env() }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    watch.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = once(watch, "exit");
    const lines = () => stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { kind: string; namespace: string; keys: string[] });
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 50));
    };
    await until(() => lines().some((l) => l.kind === "READY"));
    await client.set("w1", 1, { namespace: "watched" });
    await client.delete("w1", { namespace: "watched" });
    await client.set("elsewhere", 1, { namespace: "other" });
    await until(() => lines().some((l) => l.kind === "DELETE"));
    watch.kill("SIGTERM");
    const [code] = await exited;
    expect(code).toBe(0);
    expect(lines().map(({ kind, namespace, keys }) => ({ kind, namespace, keys }))).toEqual([
      { kind: "READY", namespace: "watched", keys: [] },
      { kind: "SET", namespace: "watched", keys: ["w1"] },
      { kind: "DELETE", namespace: "watched", keys: ["w1"] },
    ]);
  });

  it("-h as an argument or after -- is a value; VERB --help prints the usage; no command prints the usage on stderr with exit 2", async () => {
    expect(await cli(["set", "dash", "--", "-h"], env())).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(await client.get("dash")).toBe("-h");
    expect(await cli(["set", "dash1", "-h"], env())).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(await client.get("dash1")).toBe("-h");
    expect(await cli(["set", "dash3", "x", "--help"], env())).toMatchObject({ code: 2, stdout: "", stderr: expect.stringMatching(/unknown option --help/) });
    expect(await cli(["set", "dash2", "--", "--help"], env())).toMatchObject({ code: 0, stdout: "" });
    expect(await client.get("dash2")).toBe("--help");
    const verbHelp = await cli(["set", "--help", "--address", "no-port"]);
    expect(verbHelp.code).toBe(0);
    expect(verbHelp.stdout).toMatch(/^Usage: tiercache/);
    const none = await cli([]);
    expect(none).toMatchObject({ code: 2, stdout: "" });
    expect(none.stderr).toMatch(/^Usage: tiercache/);
  });

  it("get prints what JSON cannot carry as its tag, a stored undefined as a miss; set keeps integers beyond 2^53", async () => {
    await client.set("map", new Map([["a", 1]]));
    await client.set("set", new Set([1, 2]));
    await client.set("buf", Buffer.from([1, 2, 3]));
    await client.set("nan", Number.NaN);
    await client.set("undef", undefined);
    await client.set("nested", { when: new Date(0), n: 10n });
    expect(await cli(["get", "map"], env())).toEqual({ code: 0, stdout: '{"$t":"Map","v":[["a",1]]}\n', stderr: "" });
    expect(await cli(["get", "set"], env())).toMatchObject({ code: 0, stdout: '{"$t":"Set","v":[1,2]}\n' });
    expect(await cli(["get", "buf"], env())).toMatchObject({ code: 0, stdout: '{"$t":"Bytes","v":"AQID"}\n' });
    expect(await cli(["get", "nan"], env())).toMatchObject({ code: 0, stdout: '{"$t":"Number","v":"NaN"}\n' });
    expect(await cli(["get", "undef"], env())).toEqual({ code: 1, stdout: "", stderr: "" });
    expect(await cli(["get", "nested"], env())).toMatchObject({ code: 0, stdout: '{"when":{"$t":"Date","v":"1970-01-01T00:00:00.000Z"},"n":{"$t":"BigInt","v":"10"}}\n' });

    expect((await cli(["set", "big", "12345678901234567890"], env())).code).toBe(0);
    expect(await client.get("big")).toBe(12345678901234567890n);
    expect(await cli(["get", "big"], env())).toMatchObject({ code: 0, stdout: '{"$t":"BigInt","v":"12345678901234567890"}\n' });
    const nestedBig = await cli(["set", "big2", '{"id":12345678901234567890}'], env());
    expect(nestedBig).toMatchObject({ code: 2, stderr: expect.stringMatching(/integer beyond 2\^53/) });
    expect(await client.has("big2")).toBe(false);
  });

  it("reports local failures clearly: an unreadable --tls-ca, an address without a port, a hex --ttl exit 2; a bad --namespace is INVALID_ARGUMENT", async () => {
    const ca = await cli(["get", "k", "--tls-ca", "/nonexistent/ca.pem"], env());
    expect(ca).toMatchObject({ code: 2, stdout: "" });
    expect(ca.stderr).toMatch(/^tiercache: cannot read --tls-ca "\/nonexistent\/ca.pem": ENOENT/);
    const port = await cli(["get", "k", "--address", "127.0.0.1"], env());
    expect(port).toMatchObject({ code: 2, stderr: expect.stringMatching(/^tiercache: invalid --address "127.0.0.1": expected HOST:PORT/) });
    expect(await cli(["get", "k"], { ...env(), TIERCACHE_ADDRESS: "localhost" })).toMatchObject({ code: 2, stderr: expect.stringMatching(/invalid TIERCACHE_ADDRESS/) });
    expect(await cli(["set", "k", "1", "--ttl", "0x10"], env())).toMatchObject({ code: 2, stderr: expect.stringMatching(/invalid --ttl "0x10"/) });
    const ns = await cli(["get", "k", "--namespace", "no spaces"], env());
    expect(ns).toMatchObject({ code: 2, stdout: "" });
    expect(ns.stderr).toMatch(/^INVALID_ARGUMENT: invalid namespace "no spaces"/);
  });

  it("watch exits 3 with a line on stderr when the server ends the stream (shutting down), not 0 as on SIGTERM", async () => {
    const own = runTiercache(["serve", "--port", "0", "--storage", "memory"]);
    try {
      const ownAddress = await listeningAddress(own);
      const watch = spawn(process.execPath, [BIN, "watch", "--address", ownAddress], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      watch.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      watch.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = once(watch, "exit");
      for (let i = 0; i < 200 && !stdout.includes("READY"); i++) await new Promise((r) => setTimeout(r, 50));
      own.child.kill("SIGTERM");
      const [code] = await exited;
      expect(code).toBe(3);
      expect(stderr).toMatch(/^tiercache: the server closed the stream/);
    } finally {
      own.child.kill("SIGTERM");
      await own.exit;
    }
  });

  it("-h/--help describes the verbs, --version prints the version, a bad command line exits 2", async () => {
    for (const flag of ["-h", "--help"]) {
      const help = await cli([flag]);
      expect(help.stderr).toBe("");
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/get KEY[\s\S]*set KEY VALUE \[--ttl MS\][\s\S]*watch[\s\S]*--address HOST:PORT/);
    }
    expect(await cli(["--version"])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: "" });
    expect(await cli(["frobnicate"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown command "frobnicate"/) });
    expect(await cli(["get"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/get takes KEY/) });
    expect(await cli(["set", "k", "v", "--ttl", "soon"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/invalid --ttl "soon"/) });
  });
});
