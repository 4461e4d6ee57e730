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

  it("refuses a second server on one data directory, naming the first; a restart after kill -9 serves the data", async () => {
    const dir = tempDir();
    cleanup.push(dir.remove);
    const first = runTiercache(["serve", "--port", "0", "--data-dir", dir.path]);
    cleanup.push(() => first.child.kill("SIGKILL"));
    const firstClient = new CacheClient({ address: await listeningAddress(first) });
    cleanup.push(() => firstClient.close());
    await firstClient.set("k", "kept");

    const second = runTiercache(["serve", "--port", "0", "--data-dir", dir.path]);
    cleanup.push(() => second.child.kill("SIGKILL"));
    const outcome = await Promise.race([second.exit.then((code) => ({ exitCode: code })), listeningAddress(second).then(() => "listening")]);
    expect(outcome).toEqual({ exitCode: 1 });
    expect(second.stderr()).toContain(`pid ${first.child.pid} `);
    expect(second.stderr()).toContain(dir.path);

    first.child.kill("SIGKILL");
    expect(await first.exit).toBeNull();
    const restarted = runTiercache(["serve", "--port", "0", "--data-dir", dir.path]);
    cleanup.push(() => restarted.child.kill("SIGKILL"));
    const client = new CacheClient({ address: await listeningAddress(restarted) });
    cleanup.push(() => client.close());
    expect(await client.get("k")).toBe("kept");
    restarted.child.kill("SIGTERM");
    expect(await restarted.exit).toBe(0);
  });
});
