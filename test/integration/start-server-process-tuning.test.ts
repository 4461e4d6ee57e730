import { describe, expect, it } from "vitest";

/**
 * startServer tunes the whole process: glibc's malloc thresholds
 * (malloc-thresholds.test.ts) and V8's pretenuring (pretenuring.test.ts).
 * Starting a server frees mmapped blocks of its own, which raise glibc's
 * thresholds part of the way by themselves, and no API reads a V8 flag, so
 * neither effect can tell whether startServer asked; this checks that it does.
 */
describe("startServer", () => {
  it("raises the malloc thresholds and turns pretenuring off, once, as it starts", async () => {
    const { mallocThresholdsRaised } = await import("../../server/malloc-thresholds.js");
    const { pretenuringAvoided } = await import("../../server/pretenuring.js");
    const { defaultConfig, startServer } = await import("../../server/index.js");
    expect(mallocThresholdsRaised()).toBe(false);
    expect(pretenuringAvoided()).toBe(false);
    const server = await startServer(defaultConfig({ host: "127.0.0.1", port: 0, storage: "memory", logLevel: "error" }));
    try {
      expect(mallocThresholdsRaised()).toBe(true);
      expect(pretenuringAvoided()).toBe(true);
    } finally {
      await server.shutdown();
    }
  });
});
