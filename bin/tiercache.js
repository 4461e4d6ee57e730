#!/usr/bin/env node
// Entry point of the `tiercache` command: `serve` runs the server, the other verbs (get, set, …) the client.
// Runs the compiled code in this process (built by `npm ci` / `npm run build`), so that signals reach it.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const argv = process.argv.slice(2);
const entry = new URL(argv[0] === "serve" ? "../dist/server/main.js" : "../dist/client/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write("tiercache: dist/ is missing; run `npm run build` (npm ci does it) first\n");
  process.exit(1);
}
if (argv[0] === "serve") {
  const { main } = await import(entry.href);
  process.exitCode = await main(argv, process.env);
} else {
  const { clientMain, processIo } = await import(entry.href);
  const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  process.exitCode = await clientMain(argv, process.env, processIo, version);
}
