import { execFileSync } from "node:child_process";

/** Builds dist/ once so that tests which run the real `tiercache` command test the current code. */
export default function setup(): void {
  // Each vitest project runs the global setup; one build per run is enough.
  if (process.env.TIERCACHE_TEST_DIST_BUILT === "1") return;
  process.env.TIERCACHE_TEST_DIST_BUILT = "1";
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
}
