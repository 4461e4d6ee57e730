import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";

/** Memory of a server child after a forced GC; `rssAnon` (Linux) leaves out file-backed pages such as LMDB's map. */
export interface ChildMemory {
  rss: number;
  rssAnon: number | undefined;
  heap: number;
  external: number;
}

/** The child's Watch history, as its InvalidationBus counts it. */
export interface ChildWatchHistory {
  retainedBytes: number;
  maxRetainedBytes: number;
  namespaceLogs: number;
}

/** A tiercache server running in a child process (built dist/), whose memory can be read. */
export interface ServerChild {
  readonly child: ChildProcess;
  readonly address: string;
  readonly port: number;
  stderr(): string;
  exited(): boolean;
  /** Memory after three forced GCs. */
  memory(): Promise<ChildMemory>;
  /** Its Watch history now (no GC: cheap enough to sample during a run). */
  watchHistory(): Promise<ChildWatchHistory>;
  /** The longest stop and the 99th-percentile delay of its event loop since the last call (5 ms resolution). */
  loopDelay(): Promise<{ maxMs: number; p99Ms: number }>;
  stop(): Promise<void>;
}

const CHILD = `
const { resolveConfig, startServer, jsonLogger } = await import(process.env.TIERCACHE_DIST);
const { readFileSync } = await import("node:fs");
const { monitorEventLoopDelay } = await import("node:perf_hooks");
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
// The longest stop seen by a ticker of our own, counting one that no tick has ended yet (a SIGSTOP the loop has not
// yet come back from its poll to notice): the histogram above records a stop only once its timer fires after it.
let lastTick = performance.now();
let longestGap = 0;
setInterval(() => {
  const now = performance.now();
  longestGap = Math.max(longestGap, now - lastTick);
  lastTick = now;
}, 5).unref();
const server = await startServer(resolveConfig(JSON.parse(process.env.SERVER_ARGS), process.env), { logger: jsonLogger("error") });
const memory = () => {
  const anon = /RssAnon:\\s+(\\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  const m = process.memoryUsage();
  return { rss: m.rss, rssAnon: anon ? Number(anon[1]) * 1024 : undefined, heap: m.heapUsed, external: m.external };
};
process.on("message", async (message) => {
  if (message === "gc") {
    for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
    process.send(memory());
  } else if (message === "watch-history") {
    const bus = server.engine.bus;
    process.send({ retainedBytes: bus.retainedBytes, maxRetainedBytes: bus.maxRetainedBytes, namespaceLogs: bus.namespaceLogs });
  } else if (message === "loop") {
    process.send({ maxMs: Math.max(loop.max / 1e6, longestGap, performance.now() - lastTick), p99Ms: loop.percentile(99) / 1e6 });
    loop.reset();
    longestGap = 0;
  } else if (message === "stop") {
    await server.shutdown();
    process.exit(0);
  }
});
process.send({ address: server.address, port: server.port });
`;

/** Starts `tiercache serve` with `args` (and `env`, e.g. TIERCACHE_TOKENS) in a child process. */
export async function startServerChild(args: readonly string[], env: Record<string, string> = {}): Promise<ServerChild> {
  const child = spawn(process.execPath, ["--expose-gc", "--input-type=module", "-e", CHILD], {
    env: {
      PATH: process.env.PATH ?? "",
      TIERCACHE_DIST: new URL("../../dist/server/index.js", import.meta.url).href,
      SERVER_ARGS: JSON.stringify(["--port", "0", "--shutdown-grace", "1s", ...args]),
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  let exited = false;
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.on("exit", () => (exited = true));
  const [first] = (await Promise.race([once(child, "message"), once(child, "exit").then(() => [undefined])])) as [{ address?: string; port: number } | undefined];
  if (!first?.address) throw new Error(`server child did not start: ${stderr}`);
  const ask = async <T>(message: string): Promise<T> => {
    child.send(message);
    const [answer] = (await once(child, "message")) as [T];
    return answer;
  };
  return {
    child,
    address: first.address,
    port: first.port,
    stderr: () => stderr,
    exited: () => exited,
    memory: () => ask<ChildMemory>("gc"),
    watchHistory: () => ask<ChildWatchHistory>("watch-history"),
    loopDelay: () => ask<{ maxMs: number; p99Ms: number }>("loop"),
    stop: async () => {
      if (exited) return;
      child.send("stop");
      await once(child, "exit");
    },
  };
}

/** Sequential Gets on `probe` until `stop()`; latencies in ms and calls that failed (e.g. past their deadline). */
export function latencyProbe(get: () => Promise<unknown>): { stop(): Promise<{ count: number; p99: number; max: number; failed: number }> } {
  const latencies: number[] = [];
  let failed = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const start = performance.now();
      try {
        await get();
      } catch {
        failed++;
      }
      latencies.push(performance.now() - start);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const sorted = [...latencies].sort((a, b) => a - b);
      const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
      return { count: sorted.length, p99, max: sorted.at(-1) ?? 0, failed };
    },
  };
}

/** Mebibytes, for messages. */
export const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
