import { execFile } from "node:child_process";

/**
 * The interpreter the interop tests run: Debian's, where apt installs
 * python3-grpcio and python3-protobuf (a pyenv `python3` may lack them).
 * TIERCACHE_PYTHON names another one.
 */
export const PYTHON = process.env["TIERCACHE_PYTHON"] ?? "/usr/bin/python3";

/** What to run when the modules are missing. */
export const INSTALL_COMMAND = "apt-get install python3-grpcio python3-protobuf";

/** Whether the interop tests run, are skipped (with a message to print), or fail. */
export type InteropPlan = { readonly action: "run" } | { readonly action: "skip" | "fail"; readonly message: string };

/** Why `python` cannot import grpc and google.protobuf, or undefined when it can. */
export function missingPythonModules(python: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(python, ["-c", "import grpc, google.protobuf"], { env, timeout: 30_000 }, (error, _stdout, stderr) => {
      if (error === null) return resolve(undefined);
      if (error.code === "ENOENT") return resolve(`${python} does not exist`);
      resolve(stderr.trim().split("\n").at(-1) || error.message);
    });
  });
}

/**
 * Skips the Python interop tests when the modules are missing, so that `npm test`
 * passes on a fresh machine, unless TIERCACHE_REQUIRE_PYTHON=1 (set by CI after
 * it installs them) makes that a failure.
 */
export function interopPlan(missing: string | undefined, env: Readonly<Record<string, string | undefined>>): InteropPlan {
  if (missing === undefined) return { action: "run" };
  const required = env["TIERCACHE_REQUIRE_PYTHON"] === "1";
  const message =
    `the Python interop tests need ${PYTHON} with the grpc and protobuf modules (${missing}); ` +
    `install them with \`${INSTALL_COMMAND}\`` +
    (required ? " (TIERCACHE_REQUIRE_PYTHON=1: failing instead of skipping)" : ", or set TIERCACHE_REQUIRE_PYTHON=1 to make this a failure");
  return { action: required ? "fail" : "skip", message };
}
