import { describe, expect, it } from "vitest";
import { SharedRender } from "../../server/metrics.js";

describe("SharedRender", () => {
  it("makes one rendering for scrapes during it and within max-age of it, and a new one after", async () => {
    let now = 0;
    let made = 0;
    let finish!: () => void;
    const shared = new SharedRender(
      () => new Promise<string>((resolve) => (finish = () => resolve(`body ${++made}`))),
      1000,
      () => now,
    );
    const during = [shared.get(), shared.get(), shared.get(), shared.get()];
    expect(shared.renders).toBe(1);
    finish();
    expect(await Promise.all(during)).toEqual(["body 1", "body 1", "body 1", "body 1"]);
    now = 999;
    expect(await shared.get()).toBe("body 1");
    now = 1000;
    const next = shared.get();
    finish();
    expect(await next).toBe("body 2");
    expect(shared.renders).toBe(2);
  });

  it("renders again after a failed rendering", async () => {
    let fail = true;
    const shared = new SharedRender(async () => (fail ? Promise.reject(new Error("boom")) : "ok"), 60_000, () => 0);
    await expect(shared.get()).rejects.toThrow("boom");
    fail = false;
    expect(await shared.get()).toBe("ok");
    expect(shared.renders).toBe(2);
  });
});
