import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { LocalTier } from "../../server/tiers/local-tier.js";
import { tempDir } from "../helpers/test-server.js";

const codec = new ValueCodec();
const write = (key: string, value: string) => ({ key, envelope: codec.encode(new TextEncoder().encode(value), "text/plain", 0), expiresAt: 0 });
const text = (stored: Uint8Array | undefined) => (stored === undefined ? undefined : new TextDecoder().decode(codec.decode(stored).value));

describe("the local tier's data directory", () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it.each(["cache.v1", "my.cache", "..dots..", "x."])("opens a directory named %j, reopens it, and leaves nothing beside it", async (name) => {
    const parent = tempDir();
    cleanup.push(parent.remove);
    const dataDir = join(parent.path, name);
    const first = LocalTier.open({ dataDir });
    await first.set("ns", write("k", "v"));
    await first.close();
    const second = LocalTier.open({ dataDir });
    cleanup.push(() => second.close());
    expect(text(await second.get("ns", "k"))).toBe("v");
    expect(readdirSync(parent.path)).toEqual([name]);
  });
});
