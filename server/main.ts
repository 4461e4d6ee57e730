import { fileURLToPath } from "node:url";
import { ConfigError, helpText, resolveConfig } from "./config.js";
import { watchLauncher } from "./cli/launcher-gone.js";
import { packageVersion } from "./cli/version.js";
import { jsonLogger } from "./logger.js";
import { startServer } from "./server.js";

const HELP_FLAGS = new Set(["--help", "-h"]);
/** How long the process may linger once the server has stopped (an unref'd timer: it only fires if something else holds the process). */
const EXIT_AFTER_STOP_MS = 500;

/** Runs the `tiercache` command line; resolves with the process exit code once the server has stopped. */
export async function main(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "--version" || (command === "serve" && rest.includes("--version"))) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (command === undefined || HELP_FLAGS.has(command) || command === "help" || rest.some((arg) => HELP_FLAGS.has(arg))) {
    process.stdout.write(`${helpText()}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command !== "serve") {
    process.stderr.write(`tiercache: unknown command ${JSON.stringify(command)}; try "tiercache serve --help"\n`);
    return 2;
  }
  let config;
  const deprecations: string[] = [];
  try {
    config = resolveConfig(rest, env, (message) => deprecations.push(message));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tiercache: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const logger = jsonLogger(config.logLevel);
  for (const message of deprecations) logger.warn(message);
  // Listen for signals before starting: a SIGTERM that arrives while the server starts (or just after it logged
  // that it listens) stops it once it has started, instead of killing the process without a drain.
  // The listeners stay until the process ends: a second SIGTERM or SIGINT (npm's shell and the terminal both
  // forward one; an impatient Ctrl-C) is logged and ignored, never the default action that would kill the
  // drain. The drain is bounded by --shutdown-grace; SIGKILL remains for whoever cannot wait.
  let stopRequested = false;
  let stop = () => void (stopRequested = true);
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopRequested) logger.warn("already stopping; signal ignored", { signal });
    else logger.info("stop requested", { signal });
    stopRequested = true;
    stop();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const removeSignalListeners = () => {
    process.removeListener("SIGTERM", onSignal);
    process.removeListener("SIGINT", onSignal);
  };
  let server;
  try {
    server = await startServer(config, { logger });
  } catch (err) {
    removeSignalListeners();
    logger.error("cannot start", { error: (err as Error).message });
    return 1;
  }
  const running = server;
  const launcher = watchLauncher(env);
  await new Promise<void>((resolve) => {
    let stopping = false;
    stop = () => {
      stopRequested = true;
      if (stopping) return;
      stopping = true;
      launcher.cancel();
      void running.shutdown().then(resolve);
    };
    if (stopRequested) stop();
    void launcher.gone.then(stop);
  });
  removeSignalListeners();
  // Stopped: nothing may keep the process alive past this (a socket or timer a library left behind).
  setTimeout(() => process.exit(process.exitCode ?? 0), EXIT_AFTER_STOP_MS).unref();
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2), process.env);
}
