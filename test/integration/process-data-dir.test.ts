import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CacheClient } from "../../client/index.js";
import { tempDir } from "../helpers/test-server.js";
import { listeningAddress, runTiercache } from "../helpers/tiercache-process.js";

describe("tiercache serve with the embedded store", () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => cleanup.splice(0).reverse().forEach((step) => step()));

  it("serves from a --data-dir with a dot in its name and leaves nothing beside it", async () => {
    const parent = tempDir();
    cleanup.push(parent.remove);
    const dataDir = join(parent.path, "cache.v1");
    const server = runTiercache(["serve", "--port", "0", "--data-dir", dataDir]);
    cleanup.push(() => server.child.kill("SIGKILL"));
    const client = new CacheClient({ address: await listeningAddress(server) });
    cleanup.push(() => client.close());
    await client.set("k", "v");
    expect(await client.get("k")).toBe("v");
    server.child.kill("SIGTERM");
    expect(await server.exit).toBe(0);
    expect(readdirSync(parent.path)).toEqual(["cache.v1"]);
  });
});
