import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { closedPort } from "../helpers/closed-port.js";
import { listeningAddress, runTiercache, type TiercacheProcess } from "../helpers/tiercache-process.js";

/**
 * With every Sentinel unreachable, `tiercache serve` never listened: the
 * invalidation channel waited for a subscriber connection that ioredis
 * keeps retrying, so start-up hung, and a SIGTERM (held until start-up
 * ends) did nothing. It now listens, with Redis unavailable, as with an
 * unreachable --redis-url, and stops on SIGTERM.
 */
describe("tiercache serve with every Redis Sentinel unreachable", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tiercache-sentinels-down-"));
  let server: TiercacheProcess | undefined;
  afterAll(() => {
    server?.child.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("starts listening, and exits 0 on SIGTERM", async () => {
    const port = await closedPort();
    server = runTiercache(["serve", "--port", "0", "--metrics-port", "off", "--data-dir", dataDir, "--redis-sentinels", `127.0.0.1:${port}`]);
    await listeningAddress(server);
    expect(server.stderr()).toContain("redis not reachable at start");
    server.child.kill("SIGTERM");
    expect(await server.exit).toBe(0);
  }, 30_000);
});
