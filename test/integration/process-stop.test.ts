import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

/**
 * The README's start commands, run as a user runs them: SIGTERM to the process
 * the command started (npm, for `npx` and `npm start`) must stop the server and
 * free its port within the shutdown grace, leaving no process behind.
 */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const GRACE_MS = 1_000;
const SERVE_FLAGS = ["--port", "0", "--storage", "memory", "--shutdown-grace", `${GRACE_MS}ms`];

interface Started {
  child: ChildProcess;
  stderr: () => string;
}

/** Runs `command` in its own process group, so that the test can see (and clean up) whatever it leaves behind. */
function start(command: string, args: readonly string[]): Started {
  const child = spawn(command, args, { cwd: ROOT, detached: true, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return { child, stderr: () => stderr };
}

async function listeningPort(started: Started): Promise<number> {
  for (let i = 0; i < 600; i++) {
    const match = /"address":"127\.0\.0\.1:(\d+)"/.exec(started.stderr());
    if (match) return Number(match[1]);
    if (started.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server did not start: ${started.stderr()}`);
}

/** True when a new listener can bind `port` on loopback. */
async function portFree(port: number): Promise<boolean> {
  const probe = createServer();
  const bound = await new Promise<boolean>((resolve) => {
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => resolve(true));
  });
  if (bound) await new Promise<void>((resolve) => probe.close(() => resolve()));
  return bound;
}

/** True while any process is left in the process group `pgid`. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

const commands: Array<[name: string, command: string, args: string[]]> = [
  ["node bin/tiercache.js serve", process.execPath, ["bin/tiercache.js", "serve", ...SERVE_FLAGS]],
  ["npx tiercache serve", "npx", ["tiercache", "serve", ...SERVE_FLAGS]],
  ["npm start --", "npm", ["start", "--silent", "--", ...SERVE_FLAGS]],
];

describe("SIGTERM to a documented start command", () => {
  const groups: number[] = [];
  afterEach(() => {
    for (const pgid of groups.splice(0)) if (groupAlive(pgid)) process.kill(-pgid, "SIGKILL");
  });

  it.each(commands)("%s: stops the server and frees its port within the grace", async (_name, command, args) => {
    const started = start(command, args);
    groups.push(started.child.pid!);
    const exited = once(started.child, "exit");
    const port = await listeningPort(started);
    expect(await portFree(port)).toBe(false);

    const sent = Date.now();
    started.child.kill("SIGTERM");
    await exited;
    // The started process is gone; the server it ran (possibly a grandchild) must follow within the grace.
    const limit = sent + GRACE_MS + 2_000;
    while ((groupAlive(started.child.pid!) || !(await portFree(port))) && Date.now() < limit) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(groupAlive(started.child.pid!), `processes left in the group after ${Date.now() - sent} ms`).toBe(false);
    expect(await portFree(port)).toBe(true);
  });
});
