/**
 * The harness's own redis-server, on a free loopback port and a temporary
 * directory, never the shared one on 6379. Started once per run when a
 * scenario needs it, stopped at the end.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function ping(port) {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.setTimeout(200);
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => (socket.destroy(), resolve(false)));
    socket.connect(port, "127.0.0.1", () => socket.write("PING\r\n"));
    socket.once("data", (data) => {
      socket.destroy();
      resolve(data.toString().startsWith("+PONG"));
    });
  });
}

/** Whether redis-server is on PATH. */
export function redisAvailable() {
  const found = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  return !found.error && found.status === 0;
}

/** Starts a private redis-server; resolves once it answers PING. */
export async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "tiercache-bench-redis-"));
  const child = spawn(
    "redis-server",
    ["--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let output = "";
  child.stderr.on("data", (chunk) => (output += chunk));
  const kill = () => child.kill("SIGKILL");
  process.on("exit", kill);
  for (let i = 0; i < 200 && !(await ping(port)); i++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  if (!(await ping(port))) throw new Error(`redis-server on ${port} did not answer PING: ${output}`);
  return {
    host: "127.0.0.1",
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        const timer = setTimeout(kill, 5000);
        await exited;
        clearTimeout(timer);
      }
      process.off("exit", kill);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
