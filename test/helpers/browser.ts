import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";

/** Debian's Chromium, which the browser tests drive; TIERCACHE_CHROMIUM names another one. */
export const CHROMIUM = process.env["TIERCACHE_CHROMIUM"] ?? "/usr/bin/chromium";

/** What to run when it is missing. */
export const INSTALL_COMMAND = "apt-get install chromium";

/** Whether the browser tests run, are skipped (with a message to print), or fail. */
export type BrowserPlan = { readonly action: "run" } | { readonly action: "skip" | "fail"; readonly message: string };

/**
 * Skips the browser tests when Chromium is missing, so that `npm test` passes
 * on a fresh machine, unless TIERCACHE_REQUIRE_BROWSER=1 (set by CI after it
 * installs Chromium) makes that a failure.
 */
export function browserPlan(present: boolean, env: Readonly<Record<string, string | undefined>>): BrowserPlan {
  if (present) return { action: "run" };
  const required = env["TIERCACHE_REQUIRE_BROWSER"] === "1";
  const message =
    `the browser tests need Chromium at ${CHROMIUM}; install it with \`${INSTALL_COMMAND}\`` +
    (required ? " (TIERCACHE_REQUIRE_BROWSER=1: failing instead of skipping)" : ", or set TIERCACHE_REQUIRE_BROWSER=1 to make this a failure");
  return { action: required ? "fail" : "skip", message };
}

/** The plan for this machine. */
export function currentBrowserPlan(): BrowserPlan {
  return browserPlan(existsSync(CHROMIUM), process.env);
}

/** A headless Chromium with a fresh profile (a temporary user-data-dir, removed when it closes). */
export async function launchChromium(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), "tiercache-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
