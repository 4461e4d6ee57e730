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

/**
 * How many allocation sites V8 pretenured or marked to be (its trace ends a
 * site's line "=> tenure" or "=> maybe tenure"). V8 turns "maybe tenure"
 * into "tenure" only once its young generation has grown to its largest size
 * (`Heap::MaximumSizeMinorGC`), which a short run under load did not always
 * reach (1 run in 4 beside a CI run); with pretenuring off, V8 weighs no
 * site at all.
 */
async function pretenuredSites(mode: "default" | "avoided", nodeFlags: string[] = []): Promise<number> {
  const { stdout } = await run(process.execPath, ["--trace-pretenuring-statistics", ...nodeFlags, "--input-type=module", "-e", SCRIPT], {
    env: { PATH: process.env.PATH ?? "", MODE: mode, DIST: new URL("../../dist", import.meta.url).href },
    maxBuffer: 64 * 1024 * 1024,
  });
  expect(stdout).toContain("kept 2000000");
  const sites = stdout
    .split("\n")
    .filter((line) => line.endsWith("=> tenure") || line.endsWith("=> maybe tenure"))
    .map((line) => /AllocationSite\((\w+)\)/.exec(line)?.[1]);
  return new Set(sites).size;
}

describe("avoidPretenuring", () => {
  it("stops V8 from pretenuring sites whose objects survive, from the moment it runs", async () => {
    const [byDefault, avoided] = await Promise.all([pretenuredSites("default"), pretenuredSites("avoided")]);
    expect(byDefault).toBeGreaterThan(0);
    expect(avoided).toBe(0);
  }, 60_000);

  it("leaves pretenuring on when node was started with --allocation-site-pretenuring, however spelled", async () => {
    const spellings = ["--allocation-site-pretenuring", "--allocation_site_pretenuring", "--allocation_site-pretenuring", "-allocation-site-pretenuring"];
    const sites = await Promise.all(spellings.map((flag) => pretenuredSites("avoided", [flag])));
    for (const count of sites) expect(count).toBeGreaterThan(0);
  }, 60_000);
});
