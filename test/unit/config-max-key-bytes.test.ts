import { describe, expect, it } from "vitest";
import { ConfigError, resolveConfig } from "../../server/config.js";
import { LMDB_TIER_MAX_KEY_BYTES } from "../../server/tiers/lmdb-keys.js";

function refusal(argv: readonly string[], env: Record<string, string> = {}): ConfigError | undefined {
  try {
    resolveConfig(argv, env);
    return undefined;
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
}

describe("--max-key-bytes against the embedded store's key limit", () => {
  it("refuses, at start-up, a limit the embedded store cannot hold, naming the option and the largest usable value", () => {
    for (const [argv, env] of [
      [["--max-key-bytes", String(LMDB_TIER_MAX_KEY_BYTES + 1)], {}],
      [["--max-key-bytes", "4096", "--storage", "lmdb"], {}],
      [["--max-key-bytes", "4096", "--storage", "local"], {}],
      [[], { TIERCACHE_MAX_KEY_BYTES: "65536" }],
    ] as const) {
      const error = refusal(argv, env);
      expect(error?.option).toBe("--max-key-bytes");
      expect(error?.message).toContain(`at most ${LMDB_TIER_MAX_KEY_BYTES} bytes`);
      expect(error?.message).not.toContain("\n");
    }
  });

  it("accepts the default and the largest usable value with the embedded store", () => {
    expect(resolveConfig([], {}).maxKeyBytes).toBe(1024);
    expect(resolveConfig(["--max-key-bytes", String(LMDB_TIER_MAX_KEY_BYTES)], {}).maxKeyBytes).toBe(LMDB_TIER_MAX_KEY_BYTES);
  });

  it("leaves longer keys to Redis and to memory-only servers, which have no such limit", () => {
    expect(resolveConfig(["--max-key-bytes", "65536", "--redis-url", "redis://127.0.0.1:6379"], {}).maxKeyBytes).toBe(65536);
    expect(resolveConfig(["--max-key-bytes", "65536", "--storage", "memory"], {}).maxKeyBytes).toBe(65536);
  });
});

describe("a program that builds its own configuration", () => {
  it("is refused by startServer too: the embedded store cannot hold keys over its limit", async () => {
    const { startServer } = await import("../../server/server.js");
    const { defaultConfig } = await import("../../server/config.js");
    await expect(startServer(defaultConfig({ port: 0, maxKeyBytes: 4096, dataDir: "/nonexistent-never-opened" }))).rejects.toThrow(/max-key-bytes/);
  });
});
