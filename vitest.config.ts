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

export default defineConfig({
  plugins: [lowerDecorators()],
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/helpers/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
