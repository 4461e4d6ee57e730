import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentBrowserPlan, launchChromium } from "../helpers/browser.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const ARTIFACTS = join(ROOT, "test-artifacts");
const NAMESPACE = "page";

const plan = currentBrowserPlan();
if (plan.action === "skip") {
  process.stderr.write(`\n${"!".repeat(78)}\nSKIPPING the status page browser test: ${plan.message}\n${"!".repeat(78)}\n\n`);
  describe("the status page in a browser", () => {
    it.skip(`SKIPPED: ${plan.message}`, () => {});
  });
}

describe.skipIf(plan.action === "skip")("the status page in a real headless Chromium", () => {
  let t: TestServer;
  let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;

  beforeAll(async () => {
    if (plan.action !== "run") throw new Error(plan.message);
    t = await startTestServer({ storage: "lmdb", metricsPort: 0, maxMemoryBytes: 64 * 1024 * 1024 });
    chromium = await launchChromium();
  });

  afterAll(async () => {
    await chromium?.close();
    await t?.dispose();
  });

  it("shows the calls made, their rate, hit ratio and latency, the memory budget and a namespace table that agrees with Stats", async () => {
    const page = await chromium!.context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    page.on("console", (msg) => void (msg.type() === "error" && problems.push(`console error: ${msg.text()}`)));
    // Anything the page asks for from anywhere else than the server fails the test (no CDN).
    const origin = `http://127.0.0.1:${t.server.metricsPort}`;
    await page.route("**/*", (route) => (route.request().url().startsWith(origin) ? route.continue() : (problems.push(`fetched ${route.request().url()}`), route.abort())));
    await page.goto(`${origin}/`);

    for (let i = 0; i < 20; i++) await t.client.set(`k${i}`, { i }, { namespace: NAMESPACE });
    // 30 hits and 10 misses while the page polls, so its windowed figures have something to show.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 10; i++) await t.client.get(`k${i}`, { namespace: NAMESPACE });
      await t.client.get(`absent${round}`, { namespace: NAMESPACE });
      await new Promise((r) => setTimeout(r, 700));
    }
    for (let i = 0; i < 7; i++) await t.client.get(`absent-more${i}`, { namespace: NAMESPACE });

    const stats = (await t.client.stats({ namespace: NAMESPACE }))[0]!;
    const memory = stats.tiers.find((tier) => tier.tier === "memory")!;
    const hits = stats.tiers.reduce((sum, tier) => sum + tier.hits, 0);
    const row = page.locator(`#namespaces tr[data-namespace="${NAMESPACE}"]`);
    // The row's cells: namespace, entries, bytes, hits, misses, hit ratio, sets, degraded writes.
    await expect.poll(async () => (await row.locator("td").allTextContents()).join("|"), { timeout: 10_000 }).toMatch(new RegExp(`^${NAMESPACE}\\|${memory.entries}\\|[^|]+\\|${hits}\\|`));
    expect(memory.entries).toBe(20);
    expect(await row.locator("td").nth(6).textContent()).toBe(String(memory.sets));

    // Windowed figures appear once the page has two samples.
    await expect.poll(() => page.locator("#rps").textContent(), { timeout: 10_000 }).toMatch(/^\d/);
    await expect.poll(() => page.locator("#hit-ratio").textContent(), { timeout: 10_000 }).toMatch(/^\d+(\.\d)? %$/);
    await expect.poll(() => page.locator("#p50").textContent(), { timeout: 10_000 }).toMatch(/^\d+(\.\d+)? (µs|ms|s)$/);
    expect(await page.locator("#p99").textContent()).toMatch(/^\d+(\.\d+)? (µs|ms|s)$/);
    expect(await page.locator("#memory").textContent()).toContain("/ 64.0 MiB");
    expect(await page.locator("#ready").textContent()).toBe("ready");
    expect(await page.locator("#storage").textContent()).toBe(t.server.engine.durableTier);
    expect(await page.locator("#durable-size").textContent()).toMatch(/^20 entries, /);
    // Sets, gets and one Stats call, all counted.
    await expect.poll(async () => Number((await page.locator("#requests-total").textContent())?.replaceAll(",", "")), { timeout: 5_000 }).toBeGreaterThanOrEqual(20 + 33 + 7 + 1);
    // Calls per method: 20 sets, 40 gets.
    await expect.poll(async () => (await page.locator('#methods tr[data-method="Get"] td').allTextContents()).join("|"), { timeout: 5_000 }).toBe("Get|40|0");
    expect((await page.locator('#methods tr[data-method="Set"] td').allTextContents()).join("|")).toBe("Set|20|0");
    // The charts drew something.
    expect(await page.locator("#rps-chart polyline").count()).toBe(1);
    expect(await page.locator("#latency-chart polyline").count()).toBe(2);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "status-page.png"), fullPage: true });
    expect(problems).toEqual([]);
  });
});
