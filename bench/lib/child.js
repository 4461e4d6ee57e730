/**
 * Child processes of the harness: every server and load generator runs in
 * its own process (child_process.fork), driven by request/response messages
 * over the IPC channel.
 */
import { fork } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { envFlag } from "./env-flag.js";

const CHILDREN_DIR = fileURLToPath(new URL("../children/", import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL("../results/", import.meta.url));
/** A URL, as --import reads its argument (a path with # or % in it would not resolve). */
const ALLOC_SAMPLING = new URL("./alloc-sampling.js", import.meta.url).href;
/** Set by run.js for `--alloc-profile`: profiled children sample allocations instead of CPU. */
const allocations = () => envFlag("BENCH_ALLOC_PROFILE");

/** Children still alive, killed if the harness exits early. */
const live = new Set();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/**
 * Forks `bench/children/<name>.js` with `config` (JSON, as argv[2]) and
 * resolves once it reports ready. `profile` adds --cpu-prof, or with
 * BENCH_ALLOC_PROFILE allocation sampling (bench/lib/alloc-sampling.js); the
 * profile is written to bench/results/profiles/ when the child stops. `env`
 * is added to the child's environment (BENCH_DIST: which build it loads).
 */
export async function startChild(name, config = {}, { execArgv = [], profile = false, label = name, env: extraEnv = {} } = {}) {
  const argv = [...execArgv];
  const env = { ...process.env, ...extraEnv };
  if (profile) {
    const dir = join(RESULTS_DIR, "profiles");
    mkdirSync(dir, { recursive: true });
    if (allocations()) {
      argv.push("--import", ALLOC_SAMPLING);
      env.BENCH_ALLOC_FILE = join(dir, `${label}-${Date.now()}.heapprofile`);
    } else argv.push("--cpu-prof", `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${label}-${Date.now()}.cpuprofile`);
  }
  const child = fork(join(CHILDREN_DIR, `${name}.js`), [JSON.stringify(config)], {
    execArgv: argv,
    env,
    serialization: "advanced",
    stdio: ["ignore", "inherit", "pipe", "ipc"],
  });
  live.add(child);
  let stderr = "";
  // A send to a child that died but has not emitted `exit` yet fails with EPIPE: its calls reject on `exit`, so it must not crash the harness.
  child.on("error", () => {});
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const pending = new Map();
  let nextId = 1;
  let exited = false;
  const exitPromise = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      exited = true;
      live.delete(child);
      const error = new Error(`${label} exited (${code ?? signal}) ${stderr.trim()}`);
      for (const { reject } of pending.values()) reject(error);
      pending.clear();
      resolve({ code, signal });
    });
  });
  const info = await new Promise((resolve, reject) => {
    const onExit = () => reject(new Error(`${label} exited before it was ready: ${stderr.trim()}`));
    child.once("exit", onExit);
    child.once("message", (message) => {
      child.off("exit", onExit);
      if (message && message.ready) resolve(message.info);
      else reject(new Error(`${label} failed to start: ${message?.error ?? JSON.stringify(message)}`));
    });
  });
  child.on("message", (message) => {
    const entry = pending.get(message.id);
    if (!entry) return;
    pending.delete(message.id);
    if (message.ok) entry.resolve(message.result);
    else entry.reject(new Error(`${label}: ${message.error}`));
  });
  return {
    info,
    pid: child.pid,
    /** Runs `cmd` in the child; resolves with its result. */
    call(cmd, payload = {}) {
      if (exited) return Promise.reject(new Error(`${label} has exited`));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, cmd, payload });
      });
    },
    /** Asks the child to stop (it exits cleanly, so --cpu-prof is written); kills it after 10 s. */
    async stop() {
      if (exited) return;
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      this.call("stop").catch(() => {});
      await exitPromise;
      clearTimeout(timer);
    },
  };
}

/** The inspector session of a child's CPU profile in progress (profileStart/profileStop). */
let profiler;

/**
 * Commands every child answers: a V8 CPU profile of just the span between
 * `profileStart` ({ intervalUs }) and `profileStop` (which resolves with the
 * profile), for measurements of one slice rather than a whole run.
 */
const PROFILER = {
  async profileStart({ intervalUs = 100 } = {}) {
    if (profiler) throw new Error("a profile is already running");
    const { Session } = await import("node:inspector");
    profiler = new Session();
    profiler.connect();
    const post = (method, params) => new Promise((resolve, reject) => profiler.post(method, params, (err, result) => (err ? reject(err) : resolve(result))));
    await post("Profiler.enable");
    await post("Profiler.setSamplingInterval", { interval: intervalUs });
    await post("Profiler.start");
    return null;
  },
  async profileStop() {
    if (!profiler) throw new Error("no profile is running");
    const session = profiler;
    profiler = undefined;
    const { profile } = await new Promise((resolve, reject) => session.post("Profiler.stop", (err, result) => (err ? reject(err) : resolve(result))));
    session.disconnect();
    return profile;
  },
};

/**
 * Child side: runs `init(config)` (config from argv[2]), reports ready with
 * its result, then answers `{ cmd }` messages with `handlers[cmd](payload)`.
 * `stop` runs `handlers.stop` if given, then exits 0.
 */
export async function serveChild(init) {
  const config = JSON.parse(process.argv[2] ?? "{}");
  let handlers;
  try {
    handlers = await init(config);
  } catch (err) {
    process.send({ ready: false, error: err?.stack ?? String(err) });
    process.exit(1);
  }
  process.on("message", async ({ id, cmd, payload }) => {
    try {
      if (cmd === "stop") {
        await handlers.stop?.();
        await globalThis.__benchWriteAllocations?.();
        process.send({ id, ok: true, result: null }, () => process.exit(0));
        return;
      }
      const handler = handlers[cmd] ?? PROFILER[cmd];
      if (typeof handler !== "function") throw new Error(`unknown command ${cmd}`);
      const result = await handler(payload);
      process.send({ id, ok: true, result });
    } catch (err) {
      process.send({ id, ok: false, error: err?.stack ?? String(err) });
    }
  });
  process.send({ ready: true, info: handlers.info ?? null });
}
