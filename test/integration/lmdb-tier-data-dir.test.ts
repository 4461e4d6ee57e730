import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { TierUnavailableError } from "../../core/errors.js";
import { LmdbTier } from "../../server/tiers/lmdb-tier.js";
import { tempDir } from "../helpers/test-server.js";

const codec = new ValueCodec();
const write = (key: string, value: string) => ({ key, envelope: codec.encode(new TextEncoder().encode(value), "text/plain", 0), expiresAt: 0 });
const text = (stored: Uint8Array | undefined) => (stored === undefined ? undefined : new TextDecoder().decode(codec.decode(stored).value));

const DIST_LMDB_TIER = new URL("../../dist/server/tiers/lmdb-tier.js", import.meta.url).href;

/** Runs a separate Node process that opens the LMDB tier in `dataDir`, stores k=v and waits; resolves once it holds the directory. */
async function holderProcess(dataDir: string) {
  const envelope = Buffer.from(write("k", "from the holder").envelope).toString("base64");
  const script = `
    const { LmdbTier } = await import(${JSON.stringify(DIST_LMDB_TIER)});
    const tier = LmdbTier.open({ dataDir: ${JSON.stringify(dataDir)} });
    await tier.set("ns", { key: "k", envelope: Buffer.from(${JSON.stringify(envelope)}, "base64"), expiresAt: 0 });
    process.stdout.write("ready\\n");
    setInterval(() => {}, 60_000);
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = once(child, "exit");
  const [chunk] = (await Promise.race([once(child.stdout!, "data"), exited.then(() => [undefined])])) as [Buffer | undefined];
  if (chunk?.toString() !== "ready\n") throw new Error("the holder process did not open the tier");
  const kill = async () => {
    child.kill("SIGKILL");
    await exited;
  };
  return { pid: child.pid!, kill };
}

/** The error LmdbTier.open throws for `dataDir`, or undefined (after closing the tier) when it opens. */
async function refusalToOpen(dataDir: string): Promise<Error | undefined> {
  let tier: LmdbTier;
  try {
    tier = LmdbTier.open({ dataDir });
  } catch (err) {
    return err as Error;
  }
  await tier.close();
  return undefined;
}

describe("the LMDB tier's data directory", () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  it.each(["cache.v1", "my.cache", "..dots..", "x."])("opens a directory named %j, reopens it, and leaves nothing beside it", async (name) => {
    const parent = tempDir();
    cleanup.push(parent.remove);
    const dataDir = join(parent.path, name);
    const first = LmdbTier.open({ dataDir });
    await first.set("ns", write("k", "v"));
    await first.close();
    const second = LmdbTier.open({ dataDir });
    cleanup.push(() => second.close());
    expect(text(await second.get("ns", "k"))).toBe("v");
    expect(readdirSync(parent.path)).toEqual([name]);
  });

  it("refuses a second open of one directory, naming the holder and the directory, until the first is closed", async () => {
    const dir = tempDir();
    cleanup.push(dir.remove);
    const first = LmdbTier.open({ dataDir: dir.path });
    const refusal = await refusalToOpen(dir.path);
    expect(refusal).toBeInstanceOf(TierUnavailableError);
    expect((refusal as Error).message).toContain(dir.path);
    expect((refusal as Error).message).toContain(`pid ${process.pid}`);
    await first.close();
    const third = LmdbTier.open({ dataDir: dir.path });
    cleanup.push(() => third.close());
    await third.set("ns", write("k", "v"));
  });

  it("refuses a directory held by another live process, and takes it over once that process is killed", async () => {
    const dir = tempDir();
    cleanup.push(dir.remove);
    const holder = await holderProcess(dir.path);
    cleanup.push(holder.kill);
    const refusal = await refusalToOpen(dir.path);
    expect(refusal?.message).toContain(`pid ${holder.pid} `);
    expect(refusal?.message).toContain(dir.path);
    await holder.kill();
    const tier = LmdbTier.open({ dataDir: dir.path });
    cleanup.push(() => tier.close());
    expect(text(await tier.get("ns", "k"))).toBe("from the holder");
  });
});
