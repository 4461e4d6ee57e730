import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";

// A tiercache server in a child process, built from dist/ by the test suite's global setup: its event loop
// is not the test's (so a stall is the server's own), and its memory can be measured after a forced GC.
const CHILD = `
const { resolveConfig, startServer, jsonLogger } = await import(process.env.TIERCACHE_DIST);
const { readFileSync } = await import("node:fs");
const { monitorEventLoopDelay } = await import("node:perf_hooks");
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
const server = await startServer(resolveConfig(JSON.parse(process.env.SERVER_ARGS), {}), { logger: jsonLogger("error") });
const memory = () => {
  const anon = /RssAnon:\\s+(\\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  const m = process.memoryUsage();
  const bus = server.engine.bus;
  return { rss: m.rss, rssAnon: anon ? Number(anon[1]) * 1024 : undefined, heap: m.heapUsed, retainedBytes: bus.retainedBytes, maxRetainedBytes: bus.maxRetainedBytes, namespaceLogs: bus.namespaceLogs };
};
process.on("message", async (message) => {
  if (message === "gc") {
    for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
    process.send(memory());
  } else if (message === "bus") {
    process.send(memory());
  } else if (message === "loop") {
    process.send({ maxMs: loop.max / 1e6, p99Ms: loop.percentile(99) / 1e6 });
    loop.reset();
  } else if (message === "stop") {
    await server.shutdown();
    process.exit(0);
  }
});
process.send({ address: server.address, port: server.port });
`;

/** The child server's memory, and its Watch history as the bus counts it. */
export interface ServerMemory {
  rss: number;
  /** Linux only: RSS without file-backed pages. */
  rssAnon: number | undefined;
  heap: number;
  retainedBytes: number;
  maxRetainedBytes: number;
  namespaceLogs: number;
}

/** A server running in a child process. */
export interface ServerProcess {
  child: ChildProcess;
  address: string;
  port: number;
  /** What the child wrote on stderr so far. */
  stderr(): string;
  /** Its memory after a forced GC. */
  memory(): Promise<ServerMemory>;
  /** Its memory now, without a GC (cheap: for sampling the history bound). */
  sample(): Promise<ServerMemory>;
  /** The longest and 99th-percentile delays of its event loop since the last call (5 ms resolution). */
  loopDelay(): Promise<{ maxMs: number; p99Ms: number }>;
  stop(): Promise<void>;
}

/** Starts `tiercache serve` with `args` (plus `--port 0`) in a child process with `--expose-gc`. */
export async function startServerProcess(args: readonly string[]): Promise<ServerProcess> {
  const child = spawn(process.execPath, ["--expose-gc", "--input-type=module", "-e", CHILD], {
    env: {
      PATH: process.env.PATH ?? "",
      TIERCACHE_DIST: new URL("../../dist/server/index.js", import.meta.url).href,
      SERVER_ARGS: JSON.stringify(["--port", "0", ...args]),
    },
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  let exited = false;
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.on("exit", () => (exited = true));
  const [first] = (await Promise.race([once(child, "message"), once(child, "exit").then(() => [undefined])])) as [{ address: string; port: number } | undefined];
  if (!first) throw new Error(`server process did not start: ${stderr}`);
  const ask = async <T = ServerMemory>(message: string) => {
    child.send(message);
    const [answer] = (await once(child, "message")) as [T];
    return answer;
  };
  return {
    child,
    address: first.address,
    port: first.port,
    stderr: () => stderr,
    memory: () => ask("gc"),
    sample: () => ask("bus"),
    loopDelay: () => ask<{ maxMs: number; p99Ms: number }>("loop"),
    stop: async () => {
      if (exited) return;
      child.send("stop");
      await once(child, "exit");
    },
  };
}
