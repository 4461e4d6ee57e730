import { execFileSync } from "node:child_process";

/** Builds dist/ once so that tests which run the real `tiercache` command test the current code. */
export default function setup(): void {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
}
