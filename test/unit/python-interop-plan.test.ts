import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { interopPlan, missingPythonModules, PYTHON } from "../helpers/python-interop.js";
import { tempDir } from "../helpers/test-server.js";

describe("the Python interop tests on a machine without python3-grpcio", () => {
  const dir = tempDir("tiercache-nogrpc-");
  afterAll(() => dir.remove());

  it("names a missing interpreter", async () => {
    expect(await missingPythonModules("/nonexistent/python3")).toBe("/nonexistent/python3 does not exist");
  });

  it("names a missing module", async () => {
    // A grpc package that fails to import, first on the path: what a machine without python3-grpcio shows.
    mkdirSync(join(dir.path, "grpc"));
    writeFileSync(join(dir.path, "grpc", "__init__.py"), 'raise ModuleNotFoundError("No module named \'grpc\'")\n');
    const missing = await missingPythonModules(PYTHON, { ...process.env, PYTHONPATH: dir.path });
    expect(missing).toMatch(/No module named 'grpc'|does not exist/);
  });

  it("skips, naming the apt packages, unless TIERCACHE_REQUIRE_PYTHON=1 makes it fail", () => {
    const skip = interopPlan("No module named 'grpc'", {});
    expect(skip.action).toBe("skip");
    expect(skip).toHaveProperty("message", expect.stringContaining("apt-get install python3-grpcio python3-protobuf"));
    expect(skip).toHaveProperty("message", expect.stringContaining("No module named 'grpc'"));

    const fail = interopPlan("No module named 'grpc'", { TIERCACHE_REQUIRE_PYTHON: "1" });
    expect(fail.action).toBe("fail");
    expect(fail).toHaveProperty("message", expect.stringContaining("apt-get install python3-grpcio python3-protobuf"));

    expect(interopPlan(undefined, { TIERCACHE_REQUIRE_PYTHON: "1" })).toEqual({ action: "run" });
    expect(interopPlan(undefined, {})).toEqual({ action: "run" });
  });
});
