import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A redis-server process started by a test, on its own free loopback port. */
export interface TestRedis {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The process, when the test started one (undefined with TIERCACHE_TEST_REDIS_URL). */
  readonly process: ChildProcess | undefined;
  /** Stops the server (SIGKILL when `hard`) and removes its directory. */
  stop(hard?: boolean): Promise<void>;
  /** Sends SIGSTOP / SIGCONT: a paused Redis accepts connections but answers nothing. */
  pause(): void;
  resume(): void;
}

/** Extra redis-server arguments, e.g. ["--appendonly", "yes", "--appendfsync", "always"]. */
export interface TestRedisOptions {
  args?: string[];
  port?: number;
  dir?: string;
  /** A config file to load first (e.g. a Sentinel's, which must be writable). */
  configFile?: string;
  /** Run as a Sentinel (`redis-server <configFile> --sentinel`); needs `configFile`. */
  sentinel?: boolean;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

function redisServerBinary(): string {
  const found = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (found.error || found.status !== 0) {
    throw new Error(
      "these tests need Redis: put redis-server on PATH (Debian: apt-get install redis-server) or set TIERCACHE_TEST_REDIS_URL=redis://host:port to a server the tests may flush",
    );
  }
  return "redis-server";
}

async function waitForPing(host: string, port: number, child: ChildProcess, output: () => string): Promise<void> {
  const { Socket } = await import("node:net");
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.setTimeout(200);
      socket.once("error", () => resolve(false));
      socket.once("timeout", () => (socket.destroy(), resolve(false)));
      socket.connect(port, host, () => socket.write("PING\r\n"));
      socket.once("data", (data) => {
        socket.destroy();
        const reply = data.toString();
        resolve(reply.startsWith("+PONG") || reply.startsWith("-NOAUTH")); // -NOAUTH: up, with --requirepass
      });
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on ${host}:${port} did not answer PING: ${output()}`);
}

/**
 * Starts a redis-server on a free loopback port (binary from PATH), or uses
 * TIERCACHE_TEST_REDIS_URL when set. Throws a clear error when neither exists.
 */
export async function startTestRedis(options: TestRedisOptions = {}): Promise<TestRedis> {
  const external = process.env.TIERCACHE_TEST_REDIS_URL;
  if (external && !options.args && !options.port && !options.configFile) {
    const url = new URL(external);
    const port = Number(url.port || 6379);
    return { url: external, host: url.hostname, port, process: undefined, stop: async () => {}, pause() {}, resume() {} };
  }
  const binary = redisServerBinary();
  const host = "127.0.0.1";
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "tiercache-redis-"));
  const ownDir = options.dir === undefined;
  const leading = [...(options.configFile ? [options.configFile] : []), ...(options.sentinel ? ["--sentinel"] : [])];
  const child = spawn(binary, [...leading, "--bind", host, "--port", String(port), "--dir", dir, "--save", "", "--appendonly", "no", ...(options.args ?? [])], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr!.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  try {
    await waitForPing(host, port, child, () => output);
  } catch (err) {
    child.kill("SIGKILL"); // never leave a half-started server behind
    if (ownDir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const exited = new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once("exit", () => resolve())));
  return {
    url: `redis://${host}:${port}`,
    host,
    port,
    process: child,
    async stop(hard = false) {
      if (child.exitCode === null) {
        child.kill("SIGCONT");
        child.kill(hard ? "SIGKILL" : "SIGTERM");
        await exited;
      }
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
    pause: () => void child.kill("SIGSTOP"),
    resume: () => void child.kill("SIGCONT"),
  };
}
