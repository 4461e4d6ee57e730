import { afterEach, describe, expect, it } from "vitest";
import { fakeClock } from "../helpers/fake-clock.js";
import { startTestServer, tempDir } from "../helpers/test-server.js";

describe("the embedded LMDB tier across restarts", () => {
  const dirs: { remove(): void }[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => d.remove()));

  it("keeps acknowledged values, namespaces and TTLs after a restart", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const clock = fakeClock();
    const first = await startTestServer({ dataDir: dir.path }, { clock: clock.now });
    await first.client.set("kept", { v: 1 });
    await first.client.set("kept", { v: 2 }, { namespace: "other" });
    await first.client.set("expiring", "soon", { ttl: 60_000 });
    await first.client.setMany({ a: 1, b: 2 }, { namespace: "bulk" });
    await first.client.set("deleted", 1);
    await first.client.delete("deleted");
    await first.stop();

    const second = await startTestServer({ dataDir: dir.path }, { clock: clock.now });
    expect(await second.client.get("kept")).toEqual({ v: 1 });
    expect(await second.client.get("kept", { namespace: "other" })).toEqual({ v: 2 });
    expect(await second.client.getMany(["a", "b"], { namespace: "bulk" })).toEqual(new Map([["a", 1], ["b", 2]]));
    expect(await second.client.get("deleted")).toBeUndefined();
    const entry = await second.client.getEntry("expiring");
    expect(entry?.tier).toBe("lmdb");
    expect(entry?.ttlRemainingMs).toBe(60_000);
    clock.advance(60_000);
    expect(await second.client.get("expiring")).toBeUndefined();
    await second.stop();
  });

  it("serves a promoted value from memory with its remaining TTL, never extended", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const clock = fakeClock();
    const first = await startTestServer({ dataDir: dir.path }, { clock: clock.now });
    await first.client.set("k", "v", { ttl: 10_000 });
    await first.stop();
    const second = await startTestServer({ dataDir: dir.path }, { clock: clock.now });
    clock.advance(4_000);
    expect((await second.client.getEntry("k"))?.tier).toBe("lmdb");
    const promoted = await second.client.getEntry("k");
    expect(promoted?.tier).toBe("memory");
    expect(promoted?.ttlRemainingMs).toBe(6_000);
    clock.advance(6_000);
    expect(await second.client.get("k")).toBeUndefined();
    await second.stop();
  });

  it("clears one namespace in the durable tier and leaves the others", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const first = await startTestServer({ dataDir: dir.path });
    await first.client.setMany({ x: 1, y: 2 }, { namespace: "a" });
    await first.client.setMany({ x: 3 }, { namespace: "a.b" });
    await first.client.setMany({ x: 4 }, { namespace: "a-" });
    await first.client.clear({ namespace: "a" });
    await first.stop();
    const second = await startTestServer({ dataDir: dir.path });
    expect(await second.client.getMany(["x", "y"], { namespace: "a" })).toEqual(new Map());
    expect(await second.client.get("x", { namespace: "a.b" })).toBe(3);
    expect(await second.client.get("x", { namespace: "a-" })).toBe(4);
    await second.stop();
  });
});
