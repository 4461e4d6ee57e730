import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

/**
 * In a fresh process that traces V8's pretenuring decisions: optionally
 * avoid pretenuring, then make objects from a few literal sites and keep
 * them all alive across many young-generation collections, which is what
 * makes V8 pretenure a site. Prints the trace.
 */
const SCRIPT = `
if (process.env.MODE === "avoided") (await import(process.env.DIST + "/server/pretenuring.js")).avoidPretenuring();
const kept = [];
const make = (i) => ({ i, list: [i], inner: { i } });
for (let i = 0; i < 2_000_000; i++) kept.push(make(i));
process.stdout.write("kept " + kept.length + "\\n");
`;

/** How many sites V8 decided to pretenure (its trace says "=> tenure" for each decision). */
async function tenureDecisions(mode: "default" | "avoided", nodeFlags: string[] = []): Promise<number> {
  const { stdout } = await run(process.execPath, ["--trace-pretenuring-statistics", ...nodeFlags, "--input-type=module", "-e", SCRIPT], {
    env: { PATH: process.env.PATH ?? "", MODE: mode, DIST: new URL("../../dist", import.meta.url).href },
    maxBuffer: 64 * 1024 * 1024,
  });
  expect(stdout).toContain("kept 2000000");
  return stdout.split("\n").filter((line) => line.includes("=> tenure")).length;
}

describe("avoidPretenuring", () => {
  it("stops V8 from pretenuring sites whose objects survive, from the moment it runs", async () => {
    const [byDefault, avoided] = await Promise.all([tenureDecisions("default"), tenureDecisions("avoided")]);
    expect(byDefault).toBeGreaterThan(0);
    expect(avoided).toBe(0);
  }, 60_000);

  it("leaves pretenuring on when node was started with --allocation-site-pretenuring", async () => {
    expect(await tenureDecisions("avoided", ["--allocation-site-pretenuring"])).toBeGreaterThan(0);
  }, 60_000);
});

describe("startServer", () => {
  it("avoids pretenuring once, before it serves", async () => {
    const { pretenuringAvoided } = await import("../../server/pretenuring.js");
    const { defaultConfig, startServer } = await import("../../server/index.js");
    expect(pretenuringAvoided()).toBe(false);
    const server = await startServer(defaultConfig({ host: "127.0.0.1", port: 0, storage: "memory", logLevel: "error" }));
    try {
      expect(pretenuringAvoided()).toBe(true);
    } finally {
      await server.shutdown();
    }
  });
});
