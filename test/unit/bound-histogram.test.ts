import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { BoundHistogram } from "../../server/observability/bound-histogram.js";

describe("BoundHistogram", () => {
  it("writes the same text as prom-client's Histogram for the same observations", async () => {
    const bounds = [0.001, 0.01, 0.1];
    const observations = [0.0005, 0.001, 0.002, 0.01, 0.05, 0.1, 0.5, 3];
    const ours = new Registry();
    const theirs = new Registry();
    const bound = new BoundHistogram("x_seconds", "help", bounds, ours);
    const get = bound.child({ method: "Get" });
    bound.child({ method: "Set" });
    const reference = new Histogram({ name: "x_seconds", help: "help", labelNames: ["method"], buckets: bounds, registers: [theirs] });
    reference.zero({ method: "Set" });
    for (const value of observations) {
      get.observe(value);
      reference.labels("Get").observe(value);
    }
    const sorted = (text: string) => text.split("\n").sort().join("\n");
    expect(sorted(await ours.metrics())).toBe(sorted(await theirs.metrics()));
    expect(await ours.metrics()).toContain('x_seconds_bucket{le="0.001",method="Get"} 2');

    bound.reset();
    expect(await ours.metrics()).toContain('x_seconds_count{method="Get"} 0');
  });
});
