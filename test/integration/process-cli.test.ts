import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../helpers/test-server.js";

const BIN = new URL("../../bin/tiercache.js", import.meta.url).pathname;
const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** Runs `tiercache args…` to its end (or kills it once `until(stderr)` holds). */
async function tiercache(args: string[], until?: (stderr: string) => boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let stopped = false;
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    if (!stopped && until?.(stderr)) stopped = child.kill("SIGTERM");
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

const jsonLines = (text: string) => text.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);

describe("tiercache serve on the command line", () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => cleanup.splice(0).forEach((f) => f()));

  it("-h and --help list every option with units and accepted values; --version prints the package version", async () => {
    for (const flag of ["-h", "--help"]) {
      const help = await tiercache(["serve", flag]);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/--memory-max-bytes <value>.*\n.*default 256MiB; env TIERCACHE_MEMORY_MAX_BYTES/);
      expect(help.stdout).toMatch(/--shutdown-grace <value>.*\n.*default 10s; env TIERCACHE_SHUTDOWN_GRACE/);
      expect(help.stdout).toMatch(/--storage <value>.*\n.*accepts "lmdb", "memory" or "redis"; default lmdb/);
      expect(help.stdout).toMatch(/--memory-policy <value>.*\n.*accepts lru, fifo, lfu or tinylfu; default lru/);
      expect(help.stdout).not.toContain("268435456");
    }
    expect(await tiercache(["serve", "--version"])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: "" });
  });

  it("a port in use stops start-up with one JSON line naming it, before the data directory is created", async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    cleanup.push(() => holder.close());
    const port = (holder.address() as { port: number }).port;
    const dir = tempDir();
    cleanup.push(dir.remove);
    const dataDir = join(dir.path, "data");

    const run = await tiercache(["serve", "--port", String(port), "--data-dir", dataDir]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    const lines = jsonLines(run.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "error", message: "cannot start", error: `port ${port} on 127.0.0.1 is already in use` });
    expect(existsSync(dataDir)).toBe(false);
  });

  it("a metrics port in use, or the same as --port, stops start-up before the data directory is created", async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    cleanup.push(() => holder.close());
    const busy = (holder.address() as { port: number }).port;
    const free = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const port = (probe.address() as { port: number }).port;
        probe.close(() => resolve(port));
      });
    });
    const dir = tempDir();
    cleanup.push(dir.remove);

    const inUse = join(dir.path, "in-use");
    const run = await tiercache(["serve", "--port", "0", "--data-dir", inUse, "--metrics-port", String(busy)]);
    expect(run.code).toBe(1);
    const lines = jsonLines(run.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "error", message: "cannot start", error: `metrics port ${busy} on 127.0.0.1 is already in use` });
    expect(existsSync(inUse)).toBe(false);

    const same = join(dir.path, "same");
    const twice = await tiercache(["serve", "--port", String(free), "--data-dir", same, "--metrics-port", String(free)]);
    expect(twice.code).toBe(1);
    expect(jsonLines(twice.stderr)[0]).toMatchObject({ message: "cannot start", error: `metrics port ${free} on 127.0.0.1 is already in use` });
    expect(existsSync(same)).toBe(false);
  });

  it("--storage local still starts the LMDB tier, with a deprecation warning", async () => {
    const dir = tempDir();
    cleanup.push(dir.remove);
    const run = await tiercache(["serve", "--port", "0", "--storage", "local", "--data-dir", dir.path], (stderr) => stderr.includes('"tiercache listening"'));
    const lines = jsonLines(run.stderr);
    expect(lines[0]).toMatchObject({ level: "warn", message: '--storage "local" is deprecated: use "lmdb", which means the same' });
    expect(lines.find((line) => line.message === "tiercache listening")).toMatchObject({ storage: "lmdb", dataDir: dir.path });
    expect(run.code).toBe(0);
  });
});
