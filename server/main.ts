import { fileURLToPath } from "node:url";
import { ConfigError, helpText, resolveConfig } from "./config.js";
import { watchLauncher } from "./cli/launcher-gone.js";
import { startServer } from "./server.js";

/** Runs the `tiercache` command line; resolves with the process exit code once the server has stopped. */
export async function main(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "help" || rest.includes("--help")) {
    process.stdout.write(`${helpText()}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command !== "serve") {
    process.stderr.write(`tiercache: unknown command ${JSON.stringify(command)}; try "tiercache serve --help"\n`);
    return 2;
  }
  let config;
  try {
    config = resolveConfig(rest, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tiercache: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  let server;
  try {
    server = await startServer(config);
  } catch (err) {
    process.stderr.write(`tiercache: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  const running = server;
  const launcher = watchLauncher(env);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      launcher.cancel();
      void running.shutdown().then(resolve);
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    void launcher.gone.then(stop);
  });
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2), process.env);
}
