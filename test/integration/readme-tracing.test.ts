import { execFile } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The ```ts blocks of `markdown`. */
function tsBlocks(markdown: string): Array<{ code: string }> {
  const lines = markdown.split("\n");
  const blocks: Array<{ code: string }> = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```ts") continue;
    const end = lines.indexOf("```", i + 1);
    blocks.push({ code: lines.slice(i + 1, end).join("\n") });
    i = end;
  }
  return blocks;
}

describe("the README's tracing snippet, run as written", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" });
  });
  afterAll(async () => {
    await t?.dispose();
  });

  it("prints the client span of the Get under the application's span before the script exits", async () => {
    const snippet = tsBlocks(readFileSync(join(ROOT, "README.md"), "utf8")).find((b) => b.code.includes("BasicTracerProvider"));
    expect(snippet).toBeDefined();
    const js = ts.transpileModule(snippet!.code.replace("127.0.0.1:50051", t.server.address), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    // Inside the package, so that "tiercache/client" resolves to this checkout's dist/ by its own name.
    const script = join(ROOT, `.readme-tracing-${process.pid}.mjs`);
    writeFileSync(script, js);
    try {
      const stdout = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [script], { cwd: ROOT, timeout: 20_000 }, (err, out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(out))),
      );
      expect(stdout).toContain("tiercache.v1.CacheService/Get");
      expect(stdout).toContain("handle request");
    } finally {
      rmSync(script, { force: true });
    }
  });
});
