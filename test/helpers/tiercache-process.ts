import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";

const BIN = new URL("../../bin/tiercache.js", import.meta.url).pathname;

/** A `tiercache` command run by a test (the compiled dist/, which vitest's globalSetup builds). */
export interface TiercacheProcess {
  readonly child: ChildProcess;
  /** Everything written to stderr so far (the JSON log and start-up errors). */
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exit: Promise<number | null>;
}

/** Runs `tiercache <args>` with the test's environment plus `env`. */
export function runTiercache(args: readonly string[], env: Record<string, string> = {}): TiercacheProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...withoutTiercacheSettings(process.env), ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = once(child, "exit").then(([code]) => code as number | null);
  return { child, stderr: () => stderr, exit };
}

/** Waits until the server logs its address and returns it; throws with its stderr if it exits first. */
export async function listeningAddress(spawned: TiercacheProcess): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const match = /"address":"([^"]+)"/.exec(spawned.stderr());
    if (match) return match[1]!;
    if (spawned.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server did not start: ${spawned.stderr()}`);
}

/** The environment without TIERCACHE_* settings, so that a developer's own (a Redis URL, say) do not change what a test starts. */
function withoutTiercacheSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith("TIERCACHE_") || name.startsWith("TIERCACHE_REQUIRE_")));
}
