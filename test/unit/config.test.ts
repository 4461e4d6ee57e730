import { describe, expect, it } from "vitest";
import { ConfigError, resolveConfig } from "../../server/config.js";

describe("resolveConfig", () => {
  it("has working defaults", () => {
    const config = resolveConfig([], {});
    expect(config).toMatchObject({ host: "127.0.0.1", port: 50051, storage: "local", defaultTtlMs: 0, memoryPolicy: "lru", maxKeyBytes: 1024 });
    expect(config.dataDir).toMatch(/tiercache-data$/);
  });

  it("reads TIERCACHE_* variables and lets flags override them", () => {
    const env = { TIERCACHE_PORT: "6000", TIERCACHE_DEFAULT_TTL: "5m", TIERCACHE_MEMORY_MAX_BYTES: "64MiB", TIERCACHE_HOST: "0.0.0.0" };
    const config = resolveConfig(["--port", "7000", "--default-ttl=250ms"], env);
    expect(config.port).toBe(7000);
    expect(config.defaultTtlMs).toBe(250);
    expect(config.memoryMaxBytes).toBe(64 * 1024 * 1024);
    expect(config.host).toBe("0.0.0.0");
  });

  it.each([
    [["--port", "99999"], "--port"],
    [["--port", "-1"], "--port"],
    [["--default-ttl", "soon"], "--default-ttl"],
    [["--memory-max-entries", "0"], "--memory-max-entries"],
    [["--memory-policy", "random"], "--memory-policy"],
    [["--storage", "s3"], "--storage"],
    [["--max-value-bytes", "64MiB"], "--max-message-bytes"],
    [["--nope", "1"], "--nope"],
    [["--port"], "--port"],
  ])("refuses %j naming %s", (argv, option) => {
    let error: unknown;
    try {
      resolveConfig(argv, {});
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).option).toBe(option);
    expect((error as ConfigError).message).toContain(option);
    expect((error as ConfigError).message).not.toContain("\n");
  });

  it("names the environment variable when the bad value came from it", () => {
    expect(() => resolveConfig([], { TIERCACHE_PORT: "http" })).toThrow(/invalid TIERCACHE_PORT "http"/);
  });
});
