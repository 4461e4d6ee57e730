import { describe, expect, it } from "vitest";
import { redisKey } from "../../server/tiers/redis-keys.js";
import { RedisTier } from "../../server/tiers/redis-tier.js";
import { clusterNodeConnection, startSlotMigration, useTestRedisCluster } from "../helpers/redis-cluster.js";
import { envelopeText, textEnvelope } from "../helpers/text-envelope.js";

/*
 * In Cluster mode ioredis re-executes a whole auto-pipeline when every
 * command in it got the same redirection (MOVED/ASK/TRYAGAIN…), but not when a
 * non-read-only command in it succeeded. A command of an ended attempt written
 * as PING "succeeds" (PONG) where the real command would have been redirected
 * with the others: the live commands batched with it then fail with MOVED.
 */
const cluster = useTestRedisCluster();

const text = envelopeText;
const outcome = (p: Promise<Uint8Array | undefined>) =>
  p.then(
    (v) => `value ${String(text(v))}`,
    (err: unknown) => `failed: ${String(err)} (cause: ${String((err as { cause?: unknown }).cause)})`,
  );

async function run(cancelOne: boolean, ns: string, ask = false): Promise<string> {
  const options = { clusterNodes: cluster().nodes, keyPrefix: "lcm", retries: 2, commandTimeoutMs: 1_000, breakerVolumeThreshold: 1000 };
  const tier = await RedisTier.connect(options);
  const nodes = cluster().nodes.map(clusterNodeConnection);
  try {
    await tier.set(ns, { key: "a", envelope: textEnvelope("va"), expiresAt: 0 });
    await tier.set("busy", { key: "x", envelope: textEnvelope("x"), expiresAt: 0 });
    expect(text(await tier.get(ns, "a"))).toBe("va");
    // The slot moves behind the tier's back: its slot table is stale until a MOVED.
    const move = await startSlotMigration(cluster(), nodes, "lcm", ns);
    if (ask) await move.moveKeys([redisKey("lcm", ns, "a")]); // slot still MIGRATING: the source answers ASK
    else await move.finish([redisKey("lcm", ns, "a")]);

    const ac = new AbortController();
    const busy = tier.get("busy", "x"); // alone: written directly, so the next ones are auto-pipelined
    const doomed = tier.set(ns, { key: "a", envelope: textEnvelope("doomed"), expiresAt: 0 }, { signal: ac.signal }).catch(() => undefined);
    const live = outcome(tier.get(ns, "a")); // same slot: same auto-pipeline as the Set
    await Promise.resolve();
    if (cancelOne) ac.abort(new Error("client went away")); // before the auto-pipeline is written (setImmediate)
    const [result] = await Promise.all([live, busy, doomed]);
    return result;
  } finally {
    for (const n of nodes) n.disconnect();
    await tier.close();
  }
}

/** The timeout variant: a Set held in an auto-pipeline behind a busy one (its node SIGSTOPped) times out; a Get joins that pipeline. */
async function runTimedOut(ns: string): Promise<string> {
  const options = { clusterNodes: cluster().nodes, keyPrefix: "lct", retries: 0, commandTimeoutMs: 300, breakerVolumeThreshold: 1000 };
  const tier = await RedisTier.connect(options);
  const nodes = cluster().nodes.map(clusterNodeConnection);
  try {
    await tier.set(ns, { key: "a", envelope: textEnvelope("va"), expiresAt: 0 });
    expect(text(await tier.get(ns, "a"))).toBe("va");
    const slot = (await nodes[0]!.cluster("KEYSLOT", redisKey("lct", ns, "a"))) as number;
    const owners = await Promise.all(nodes.map(async (n) => ((await n.cluster("COUNTKEYSINSLOT", slot)) as number) > 0));
    const from = owners.indexOf(true);
    // a second key on the same node, in another slot, to keep that node's auto-pipeline busy
    let other = "";
    for (let i = 0; i < 10_000 && !other; i++) {
      const candidate = `busy${i}`;
      const s = (await nodes[0]!.cluster("KEYSLOT", redisKey("lct", candidate, "x"))) as number;
      const fromPort = Number(cluster().nodes[from]!.split(":")[1]);
      const ranges = (await nodes[0]!.cluster("SLOTS")) as unknown as [number, number, [string, number]][];
      const owner = ranges.some(([lo, hi, [, port]]) => s >= lo && s <= hi && port === fromPort);
      if (owner && s !== slot) other = candidate;
    }
    await tier.set(other, { key: "x", envelope: textEnvelope("x"), expiresAt: 0 });
    const move = await startSlotMigration(cluster(), nodes, "lct", ns);
    await move.finish([redisKey("lct", ns, "a")]);

    cluster().servers[from]!.pause();
    const busy1 = tier.get(other, "x").catch(() => undefined); // direct
    const busy2 = tier.get(other, "x").catch(() => undefined); // the running auto-pipeline, stuck
    await new Promise((r) => setTimeout(r, 20));
    const doomed = tier.set(ns, { key: "a", envelope: textEnvelope("doomed"), expiresAt: 0 }).catch(() => undefined); // held behind it
    await new Promise((r) => setTimeout(r, 400)); // its attempt timed out
    const live = outcome(tier.get(ns, "a")); // joins the held pipeline
    await new Promise((r) => setTimeout(r, 20));
    cluster().servers[from]!.resume();
    const [result] = await Promise.all([live, busy1, busy2, doomed]);
    return result;
  } finally {
    for (const s of cluster().servers) s.resume();
    for (const n of nodes) n.disconnect();
    await tier.close();
  }
}

describe("review5: Cluster auto-pipeline with a neutered command", () => {
  it("timeout variant: a live Get batched with a timed-out Set on a moved slot still answers (failed with MOVED when a late command was written as PING)", async () => {
    expect(await runTimedOut("mv3")).toMatch(/^value (va|doomed)$/);
  }, 30_000);

  it("control: without a cancelled neighbour, a Get on a moved slot is redirected and answers", async () => {
    expect(await run(false, "mv1")).toBe("value doomed"); // the Set and the Get, both redirected, in order
  }, 30_000);

  it("ASK variant (slot migrating, key already moved): a live Get batched with a cancelled Set still answers", async () => {
    expect(await run(true, "mv4", true)).toMatch(/^value (va|doomed)$/);
  }, 30_000);

  it("ASK control: without a cancelled neighbour the pipeline is redirected", async () => {
    expect(await run(false, "mv5", true)).toBe("value doomed");
  }, 30_000);

  it("a live Get auto-pipelined with a cancelled Set on a moved slot still answers (failed with MOVED when a late command was written as PING)", async () => {
    expect(await run(true, "mv2")).toMatch(/^value (va|doomed)$/); // the cancelled Set may or may not have landed
  }, 30_000);
});
