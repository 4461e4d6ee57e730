import { execFileSync } from "node:child_process";

/** Builds dist/ once so that tests which run the real `tiercache` command test the current code. */
export default function setup(): void {
  // Each vitest project runs the global setup, in the one vitest process: one build per run is enough.
  const run = String(process.pid);
  if (process.env.TIERCACHE_TEST_DIST_BUILT === run) return;
  process.env.TIERCACHE_TEST_DIST_BUILT = run;
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
}
