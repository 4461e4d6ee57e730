import { execFile } from "node:child_process";
import { describe, expect, it } from "vitest";
import { startTestRedis } from "../helpers/redis-server.js";
import { startTestServer } from "../helpers/test-server.js";

const BIN = new URL("../../bin/tiercache.js", import.meta.url).pathname;

describe("tiercache set against a server whose Redis is down, with degraded writes on", () => {
  it("stores the value, exits 0, and warns on stderr that it is in memory only", async () => {
    const redis = await startTestRedis();
    const s = await startTestServer({ storage: "redis", redisUrl: redis.url, redisTimeoutMs: 200, degradedWrites: true });
    try {
      await redis.stop(true);
      const res = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, [BIN, "set", "k", "2", "--address", s.server.address], { timeout: 20_000 }, (err, stdout, stderr) =>
          resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : -1, stdout, stderr }),
        ),
      );
      expect(res).toMatchObject({ code: 0, stdout: "" });
      expect(res.stderr).toMatch(/^tiercache: warning: stored in the server's memory only \(degraded write/);
      expect(await s.client.get("k")).toBe(2);
    } finally {
      await s.dispose();
    }
  });
});
