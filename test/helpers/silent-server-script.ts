import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TcpProxy } from "./tcp-proxy.js";
import { tempDir } from "./test-server.js";

const CLIENT = new URL("../../dist/client/index.js", import.meta.url).href;
const KILL_AFTER_MS = 20_000;

/**
 * Runs `body` as an ES module script that imports `CacheClient` (from dist/) and has `go()`: once it prints "ready"
 * the proxy to its server is paused (the server goes silent) and `go()` resolves. Reports how long after it printed
 * "done" the process exited (it is killed after 20 s).
 */
export async function runClientScriptAgainstSilentServer(body: string, proxy: TcpProxy): Promise<{ code: number | null; stdout: string; stderr: string; msAfterDone: number | undefined }> {
  const dir = tempDir("tiercache-session-exit-");
  try {
    const script = join(dir.path, "child.mjs");
    writeFileSync(script, `import { CacheClient } from ${JSON.stringify(CLIENT)};\nconst go = () => new Promise((r) => process.stdin.once("data", () => { process.stdin.destroy(); r(); }));\n${body}\n`);
    const child = spawn(process.execPath, [script], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let doneAt: number | undefined;
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes("ready") && !stdout.includes("paused")) {
        stdout += "paused\n";
        proxy.pause();
        child.stdin!.write("go\n");
      }
      if (stdout.includes("done") && doneAt === undefined) doneAt = Date.now();
    });
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), KILL_AFTER_MS);
    const [code] = (await once(child, "exit")) as [number | null];
    clearTimeout(killer);
    return { code, stdout, stderr, msAfterDone: doneAt === undefined ? undefined : Date.now() - doneAt };
  } finally {
    proxy.resume();
    dir.remove();
  }
}
