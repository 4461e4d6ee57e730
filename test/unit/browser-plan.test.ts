import { describe, expect, it } from "vitest";
import { browserPlan } from "../helpers/browser.js";

describe("the browser tests on a machine without Chromium", () => {
  it("skip, naming the apt package, unless TIERCACHE_REQUIRE_BROWSER=1 makes them fail", () => {
    const skip = browserPlan(false, {});
    expect(skip.action).toBe("skip");
    expect(skip).toHaveProperty("message", expect.stringContaining("apt-get install chromium"));

    const fail = browserPlan(false, { TIERCACHE_REQUIRE_BROWSER: "1" });
    expect(fail.action).toBe("fail");
    expect(fail).toHaveProperty("message", expect.stringContaining("apt-get install chromium"));

    expect(browserPlan(true, { TIERCACHE_REQUIRE_BROWSER: "1" })).toEqual({ action: "run" });
    expect(browserPlan(true, {})).toEqual({ action: "run" });
  });
});
