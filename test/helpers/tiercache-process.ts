import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";

const BIN = new URL("../../bin/tiercache.js", import.meta.url).pathname;

/** A `tiercache serve` process started by a test (dist/ is built by the global setup). */
export interface ServerProcess {
  readonly child: ChildProcess;
  /** `host:port` it listens on. */
  readonly address: string;
  /** What it wrote to stderr (its JSON log), last 20 kB. */
  log(): string;
  /** Sends `signal` and waits for the process to exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `node bin/tiercache.js serve --port 0 <args>` and resolves once it
 * logs its address. Throws with its log when it exits or is silent for 15 s.
 */
export async function startServerProcess(args: readonly string[], env: Record<string, string> = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [BIN, "serve", "--port", "0", ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)));
  const exited = once(child, "exit");
  for (let i = 0; i < 300; i++) {
    const match = /"address":"([^"]+)"/.exec(stderr);
    if (match) {
      return {
        child,
        address: match[1]!,
        log: () => stderr,
        async kill(signal) {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill(signal);
            await exited;
          }
        },
      };
    }
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill("SIGKILL");
  throw new Error(`tiercache serve did not start: ${stderr}`);
}
