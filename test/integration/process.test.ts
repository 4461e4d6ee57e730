import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { CacheClient } from "../../client/index.js";
import { startTestRedis } from "../helpers/redis-server.js";
import { tempDir } from "../helpers/test-server.js";

const BIN = new URL("../../bin/tiercache.js", import.meta.url).pathname;

interface Spawned {
  child: ChildProcess;
  stderr: () => string;
  exit: Promise<number | null>;
}

function run(args: string[], env: Record<string, string> = {}): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = once(child, "exit").then(([code]) => code as number | null);
  return { child, stderr: () => stderr, exit };
}

async function listening(spawned: Spawned): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const match = /"address":"([^"]+)"/.exec(spawned.stderr());
    if (match) return match[1]!;
    if (spawned.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server did not start: ${spawned.stderr()}`);
}

describe("the tiercache command", () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => cleanup.splice(0).forEach((f) => f()));

  it("stops bad configuration with one line naming the option", async () => {
    const bad = run(["serve", "--port", "abc"]);
    expect(await bad.exit).toBe(2);
    expect(bad.stderr().trim().split("\n")).toEqual([`tiercache: invalid --port "abc": expected an integer from 0 to 65535`]);

    const badEnv = run(["serve"], { TIERCACHE_MEMORY_MAX_BYTES: "lots" });
    expect(await badEnv.exit).toBe(2);
    expect(badEnv.stderr()).toMatch(/^tiercache: invalid TIERCACHE_MEMORY_MAX_BYTES "lots"/);

    const unknown = run(["serve", "--colour", "blue"]);
    expect(await unknown.exit).toBe(2);
    expect(unknown.stderr()).toMatch(/unknown option --colour/);
  });

  it("serves from env and flags, drains in-flight calls on SIGTERM and exits 0", async () => {
    const dir = tempDir();
    cleanup.push(dir.remove);
    const server = run(["serve", "--port", "0"], { TIERCACHE_DATA_DIR: dir.path });
    cleanup.push(() => server.child.kill("SIGKILL"));
    const address = await listening(server);
    const client = new CacheClient({ address });
    await client.set("before", 1);

    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slowEntries = (async function* () {
      yield ["in-flight-1", "a"] as const;
      await gate;
      yield ["in-flight-2", "b"] as const;
    })();
    const inFlight = client.streamSet(slowEntries, { batchSize: 1 });
    await new Promise((r) => setTimeout(r, 200));
    server.child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
    release();
    expect(await inFlight).toBe(2);
    expect(await server.exit).toBe(0);
    client.close();

    const again = run(["serve", "--port", "0", "--data-dir", dir.path]);
    cleanup.push(() => again.child.kill("SIGKILL"));
    const client2 = new CacheClient({ address: await listening(again) });
    expect(await client2.getMany(["before", "in-flight-1", "in-flight-2"])).toEqual(
      new Map<string, unknown>([["before", 1], ["in-flight-1", "a"], ["in-flight-2", "b"]]),
    );
    client2.close();
    again.child.kill("SIGTERM");
    expect(await again.exit).toBe(0);
  });

  it("with Redis paused (answering nothing), exits 0 within --shutdown-grace plus the close budget (1 s) and exit margin (0.5 s)", async () => {
    const redis = await startTestRedis();
    cleanup.push(() => void redis.stop(true));
    const server = run(["serve", "--port", "0", "--storage", "redis", "--redis-url", redis.url, "--shutdown-grace", "1s"]);
    cleanup.push(() => server.child.kill("SIGKILL"));
    await listening(server);
    redis.pause();
    const sent = Date.now();
    server.child.kill("SIGTERM");
    expect(await server.exit).toBe(0);
    // A bound the shutdown promises (it took 3 to 6 s while QUIT and the last publish were waited for), not a speed measurement.
    expect(Date.now() - sent).toBeLessThan(1_000 + 1_000 + 500);
    expect(server.stderr()).toContain('"stopped"');
  });

  it("ignores (and logs) a second SIGTERM while it drains, so the call in flight still ends and it exits 0", async () => {
    const dir = tempDir();
    cleanup.push(dir.remove);
    const server = run(["serve", "--port", "0", "--data-dir", dir.path, "--shutdown-grace", "10s"]);
    cleanup.push(() => server.child.kill("SIGKILL"));
    const client = new CacheClient({ address: await listening(server) });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inFlight = client.streamSet(
      (async function* () {
        yield ["first", 1] as const;
        await gate;
        yield ["second", 2] as const;
      })(),
      { batchSize: 1 },
    );
    await new Promise((r) => setTimeout(r, 200));
    server.child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
    server.child.kill("SIGTERM"); // as npm's shell and the terminal both deliver one
    server.child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 200));
    release();
    expect(await inFlight).toBe(2);
    expect(await server.exit).toBe(0);
    client.close();
    expect(server.stderr()).toContain("already stopping; signal ignored");
    expect(server.stderr()).toContain('"stopped"');
  });
});
