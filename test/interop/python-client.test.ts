import { execFile, type ExecFileException } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTENT_TYPE_JSON } from "../../client/index.js";
import { INSTALL_COMMAND, interopPlan, missingPythonModules, PYTHON } from "../helpers/python-interop.js";
import { startTestServer, tempDir, type TestServer } from "../helpers/test-server.js";

const INSTALL_HINT = `install them with \`${INSTALL_COMMAND}\``;
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SCRIPT = join(ROOT, "test/interop/cache_client.py");
const NAMESPACE = "interop";

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  error: ExecFileException | null;
}

function run(file: string, args: string[], cwd = ROOT): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr, error });
    });
  });
}

/** What cache_client.py prints on success. */
interface PythonResults {
  checks: Record<string, boolean>;
  set: { key: string; value: unknown };
  get: { found: boolean; content_type: string; value: unknown };
  get_many: Record<string, unknown>;
  stream_get: Array<{ found: string[]; missing: string[] }>;
}

const plan = interopPlan(await missingPythonModules(PYTHON), process.env);
if (plan.action === "skip") {
  process.stderr.write(`\n${"!".repeat(78)}\nSKIPPING the Python interop tests: ${plan.message}\n${"!".repeat(78)}\n\n`);
  describe("a Python client", () => {
    it.skip(`SKIPPED: ${plan.message}`, () => {});
  });
}

/** The Python program in the README's heredoc (`/usr/bin/python3 - <<'PY'`), calling `address`. */
function readmePython(address: string): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const match = /\/usr\/bin\/python3 - <<'PY'\n([\s\S]*?)\nPY\n/.exec(readme);
  if (!match) throw new Error("README.md has no `/usr/bin/python3 - <<'PY'` snippet");
  return match[1]!.replaceAll("127.0.0.1:50051", address);
}

describe.skipIf(plan.action === "skip")("a Python client (grpcio + a descriptor set, no generated code)", () => {
  let t: TestServer;
  const dir = tempDir("tiercache-interop-");
  const descriptorSet = join(dir.path, "cache.binpb");

  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" });
    const buf = await run(join(ROOT, "node_modules/.bin/buf"), [
      "build",
      "-o",
      descriptorSet,
      "--as-file-descriptor-set",
      "--path",
      "proto/tiercache/v1/cache.proto",
    ]);
    if (buf.code !== 0) throw new Error(`buf build failed (exit ${buf.code}): ${buf.stderr || buf.error?.message}`);
  });
  afterAll(async () => {
    await t?.dispose();
    dir.remove();
  });

  it(`${PYTHON} has the grpc and protobuf modules`, () => {
    if (plan.action !== "run") throw new Error(plan.message);
  });

  it("runs the README's Python snippet as written: it writes a value and reads it back", async () => {
    const script = join(dir.path, "readme-snippet.py");
    writeFileSync(script, readmePython(t.server.address));
    const py = await run(PYTHON, [script], dir.path); // the snippet reads cache.binpb from its working directory
    expect(py.code, `README snippet exited ${py.code}\nstderr: ${py.stderr}`).toBe(0);
    expect(JSON.parse(py.stdout.trim())).toEqual({ hello: "world" });
    expect(await t.client.get("greeting", { namespace: "interop" })).toEqual({ hello: "world" });
  });

  it("reads what TypeScript wrote, writes plain JSON TypeScript reads back, over unary and bidi-streaming calls", async () => {
    const written = { greeting: "hello", n: 42 };
    await t.client.set("ts-written", written, { namespace: NAMESPACE });
    expect((await t.client.getEntry("ts-written", { namespace: NAMESPACE }))?.contentType).toBe(CONTENT_TYPE_JSON);

    const py = await run(PYTHON, [SCRIPT, t.server.address, descriptorSet, "--namespace", NAMESPACE, "--expect", JSON.stringify(written)]);
    if (py.code === 3 || /No module named/.test(py.stderr)) {
      throw new Error(`cache_client.py cannot import grpc/protobuf: ${INSTALL_HINT}\n${py.stderr}`);
    }
    const line = py.stdout.trim().split("\n").at(-1) ?? "";
    expect(py.code, `cache_client.py exited ${py.code}\nstdout: ${py.stdout}\nstderr: ${py.stderr}`).toBe(0);
    const results = JSON.parse(line) as PythonResults;

    expect(results.checks).toEqual({
      get_found: true,
      get_equals_expected: true,
      get_many_py_value: true,
      stream_get_every_answer: true,
      stream_get_split_answer: true,
      tagged_found_before_invalidation: true,
      tagged_gone_after_invalidation: true,
    });
    expect(await t.client.get("py-tagged", { namespace: NAMESPACE })).toBeUndefined(); // Python's InvalidateTags holds for TypeScript too
    await t.client.set("py-tagged", 2, { namespace: NAMESPACE, tags: ["py-tag"] });
    expect(await t.client.get("py-tagged", { namespace: NAMESPACE })).toBe(2);
    expect(results.get).toEqual({ found: true, content_type: CONTENT_TYPE_JSON, value: written });
    expect(results.get_many).toEqual({ "ts-written": written, "py-written": results.set.value });
    expect(results.stream_get).toEqual([
      { found: ["ts-written"], missing: ["missing"] },
      { found: ["py-written"], missing: [] },
      { found: Array.from({ length: 200 }, (_, i) => `py-bulk:${i}`), missing: [] },
    ]);

    // What Python wrote as plain JSON reads back in TypeScript as that JSON, untouched.
    expect(results.set.value).toEqual({ from: "python", list: [1, 2.5, null, true], text: "naïve ☃" });
    const entry = await t.client.getEntry("py-written", { namespace: NAMESPACE });
    expect(entry?.contentType).toBe(CONTENT_TYPE_JSON);
    expect(entry?.value).toEqual(results.set.value);
  });
});
