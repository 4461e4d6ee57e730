import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * Every ```ts block of the README type-checks under the project's tsconfig,
 * importing the package by its published names ("tiercache/client" resolves
 * through package.json exports to dist/, which the global setup builds).
 */
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Names the snippets leave to the reader's own code. */
const READER_CODE = `
interface User { id: number; name: string }
declare const db: {
  users: { find(id: number): Promise<User | undefined>; search(q: string): Promise<User[]> };
  prices: { findMany(skus: readonly string[]): Promise<Map<string, number>> };
};
declare const id: number;
declare const skus: string[];
`;

/** The ```ts blocks of `markdown`, with the line each starts on. */
export function tsBlocks(markdown: string): Array<{ line: number; code: string }> {
  const blocks: Array<{ line: number; code: string }> = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```ts") continue;
    const end = lines.indexOf("```", i + 1);
    if (end < 0) throw new Error(`README.md:${i + 1}: unclosed code block`);
    blocks.push({ line: i + 2, code: lines.slice(i + 1, end).join("\n") });
    i = end;
  }
  return blocks;
}

/** Type-checks in-memory modules at the repository root; returns the diagnostics, formatted. */
function typeCheck(files: ReadonlyMap<string, string>): string[] {
  const parsed = ts.getParsedCommandLineOfConfigFile(join(ROOT, "tsconfig.json"), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    },
  });
  if (parsed === undefined) throw new Error("cannot read tsconfig.json");
  const options = { ...parsed.options, noEmit: true };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (name) => files.has(name) || fileExists.call(host, name);
  host.readFile = (name) => files.get(name) ?? readFile.call(host, name);
  host.getSourceFile = (name, version, ...rest) => {
    const text = files.get(name);
    return text === undefined ? getSourceFile.call(host, name, version, ...rest) : ts.createSourceFile(name, text, version);
  };
  const program = ts.createProgram([...files.keys()], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file?.fileName ?? ""}:${d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
}

describe("README.md", () => {
  const blocks = tsBlocks(readFileSync(join(ROOT, "README.md"), "utf8"));

  it("finds the TypeScript snippets", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
  });

  it("has TypeScript snippets that type-check as written", () => {
    // One module per snippet, named for its README line; the reader's own names go after its code.
    const files = new Map(blocks.map((b) => [join(ROOT, `README.md-line-${b.line}.ts`), `${b.code}\n${READER_CODE}\nexport {};\n`]));
    expect(typeCheck(files)).toEqual([]);
  });

  it("would report a snippet that does not type-check", () => {
    const broken = new Map([[join(ROOT, "README.md-line-0.ts"), `import { CacheClient } from "tiercache/client";\nnew CacheClient({ adress: "x" });\nexport {};\n`]]);
    expect(typeCheck(broken).join("\n")).toMatch(/README\.md-line-0\.ts:2: .*adress/);
  });
});
