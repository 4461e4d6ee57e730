import ts from "typescript";
import { defineConfig, type Plugin } from "vitest/config";

/**
 * Vite 8's Oxc transform does not lower TC39 decorators (oxc-project/oxc#9170):
 * files that use them go through TypeScript's own transpiler first.
 */
function lowerDecorators(): Plugin {
  return {
    name: "tiercache:lower-decorators",
    enforce: "pre",
    transform(code, id) {
      if (!id.endsWith(".ts") || !/^\s*@[\w.]+(\(|\s*$)/m.test(code)) return undefined;
      const out = ts.transpileModule(code, {
        fileName: id,
        compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, sourceMap: true, verbatimModuleSyntax: false },
      });
      return { code: out.outputText, map: out.sourceMapText ?? null };
    },
  };
}

/** Test files that need no Redis, no server process and no idle machine (a few serve gRPC in-process on a free port, or run a short child process). */
const IN_PROCESS = ["test/unit/**/*.test.ts", "test/model/**/*.test.ts"];

export default defineConfig({
  plugins: [lowerDecorators()],
  test: {
    globalSetup: ["test/helpers/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // In-process tests run two files at a time first; then every file that starts servers, Redis or
    // other processes runs alone, as their timing assumes an otherwise idle machine.
    projects: [
      {
        extends: true,
        test: { name: "in-process", include: IN_PROCESS, maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: "processes", include: ["test/**/*.test.ts"], exclude: IN_PROCESS, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
