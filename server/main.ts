import { fileURLToPath } from "node:url";
import { ConfigError, helpText, resolveConfig } from "./config.js";
import { watchLauncher } from "./cli/launcher-gone.js";
import { packageVersion } from "./cli/version.js";
import { jsonLogger } from "./logger.js";
import { startServer } from "./server.js";

const HELP_FLAGS = new Set(["--help", "-h"]);

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
  let stopRequested = false;
  let stop = () => void (stopRequested = true);
  const onSignal = () => stop();
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  let server;
  try {
    server = await startServer(config, { logger });
  } catch (err) {
    process.removeListener("SIGTERM", onSignal);
    process.removeListener("SIGINT", onSignal);
    logger.error("cannot start", { error: (err as Error).message });
    return 1;
  }
  const running = server;
  const launcher = watchLauncher(env);
  await new Promise<void>((resolve) => {
    let stopping = false;
    stop = () => {
      if (stopping) return;
      stopping = true;
      launcher.cancel();
      void running.shutdown().then(resolve);
    };
    if (stopRequested) stop();
    void launcher.gone.then(stop);
  });
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2), process.env);
}
