import { beforeEach, describe, expect, it } from "vitest";
import { TierUnavailableError } from "../../core/errors.js";
import type { CacheEngine } from "../../server/engine/cache-engine.js";
import type { Change } from "../../server/engine/invalidation-bus.js";
import { fakeClock, type FakeClock } from "../helpers/fake-clock.js";
import { FakeDurableTier } from "../helpers/fake-durable-tier.js";
import { engineWith } from "../helpers/test-engine.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);

function engineWithChanges(clock: FakeClock, durable: FakeDurableTier, onChange?: (change: Change) => void) {
  return engineWith(clock, durable, {}, onChange ? { onChange } : {});
}

/** Holds durable reads until `open()`. */
function gateReads(durable: FakeDurableTier): () => void {
  let open!: () => void;
  durable.gate = new Promise((resolve) => (open = resolve));
  return () => {
    durable.gate = undefined;
    open();
  };
}

describe("CacheEngine: a read-through in flight never brings back what a change removed", () => {
  let clock: FakeClock;
  let durable: FakeDurableTier;
  let writer: CacheEngine;
  let engine: CacheEngine;
  beforeEach(async () => {
    clock = fakeClock();
    durable = new FakeDurableTier(clock.now);
    writer = engineWithChanges(clock, durable);
    engine = engineWithChanges(clock, durable);
    await writer.set("ns", { key: "k", value: bytes("old"), contentType: "", ttlMs: 0 });
    const snapshot = (ns: string, key: string) => durable.data.get(`${ns}\u0000${key}`); // what the tier held when the read reached it
    durable.get = async (ns, key) => {
      const envelope = snapshot(ns, key);
      await durable.gate;
      return envelope;
    };
    durable.getMany = async (ns, keys) => {
      const envelopes = keys.map((key) => snapshot(ns, key));
      await durable.gate;
      return envelopes;
    };
  });

  it("a local clear", async () => {
    const open = gateReads(durable);
    const inFlight = engine.get("ns", "k");
    await engine.clear("ns");
    open();
    await inFlight;
    expect(await engine.get("ns", "k")).toBeUndefined();
  });

  it("a clear arriving from another instance", async () => {
    const open = gateReads(durable);
    const inFlight = engine.get("ns", "k");
    await writer.clear("ns");
    engine.applyRemoteChange({ kind: "clear", namespace: "ns", keys: [] });
    open();
    await inFlight;
    expect(await engine.get("ns", "k")).toBeUndefined();
  });

  it("the reset after a resync", async () => {
    const open = gateReads(durable);
    const inFlight = engine.getMany("ns", ["k"]);
    await writer.delete("ns", "k");
    engine.forgetRemoteState();
    open();
    await inFlight;
    expect(await engine.get("ns", "k")).toBeUndefined();
  });

  it("a caller arriving after the clear does not join the read that started before it", async () => {
    const open = gateReads(durable);
    const before = engine.get("ns", "k");
    await engine.clear("ns");
    const after = engine.get("ns", "k");
    open();
    expect(text((await before)?.value)).toBe("old");
    expect(await after).toBeUndefined();
  });

  it("a delete whose durable part overlaps the read", async () => {
    let releaseDelete!: () => void;
    const deleteGate = new Promise<void>((resolve) => (releaseDelete = resolve));
    const realDelete = durable.delete.bind(durable);
    durable.delete = async (ns, key) => {
      await deleteGate;
      return realDelete(ns, key);
    };
    const deleting = engine.delete("ns", "k");
    const reading = engine.get("ns", "k"); // starts after the delete began: reads "old" before it lands
    expect(text((await reading)?.value)).toBe("old");
    releaseDelete();
    await deleting;
    expect(await engine.get("ns", "k")).toBeUndefined();
  });
});

describe("CacheEngine: a change whose durable outcome is uncertain", () => {
  let clock: FakeClock;
  let durable: FakeDurableTier;
  let changes: Change[];
  let engine: CacheEngine;
  beforeEach(async () => {
    clock = fakeClock();
    durable = new FakeDurableTier(clock.now);
    changes = [];
    engine = engineWithChanges(clock, durable, (change) => changes.push(change));
    await engine.set("ns", { key: "k", value: bytes("old"), contentType: "", ttlMs: 0 });
    changes.length = 0;
  });

  it("a failed write drops the memory copy and is still published, so the next read asks the durable tier", async () => {
    durable.failWrites = true;
    const realSetMany = durable.setMany.bind(durable);
    durable.setMany = async (ns, writes) => {
      durable.failWrites = false;
      await realSetMany(ns, writes); // the write lands...
      throw new TierUnavailableError("reply lost"); // ...but its reply is lost
    };
    await expect(engine.set("ns", { key: "k", value: bytes("new"), contentType: "", ttlMs: 0 })).rejects.toBeInstanceOf(TierUnavailableError);
    expect(changes).toEqual([{ kind: "set", namespace: "ns", keys: ["k"] }]);
    expect(await engine.get("ns", "k")).toMatchObject({ tier: "lmdb" });
    expect(text((await engine.get("ns", "k"))?.value)).toBe("new");
  });

  it("a failed delete, touch or clear is published too", async () => {
    durable.delete = async () => {
      throw new TierUnavailableError("timeout");
    };
    durable.touch = async () => {
      throw new TierUnavailableError("timeout");
    };
    durable.clear = async () => {
      throw new TierUnavailableError("timeout");
    };
    await expect(engine.delete("ns", "k")).rejects.toThrow(TierUnavailableError);
    await expect(engine.touch("ns", "k", 1000)).rejects.toThrow(TierUnavailableError);
    await expect(engine.clear("ns")).rejects.toThrow(TierUnavailableError);
    expect(changes.map((c) => c.kind)).toEqual(["delete", "touch", "clear"]);
  });
});

describe("CacheEngine: one rule for stale values (within grace)", () => {
  let clock: FakeClock;
  let durable: FakeDurableTier;
  let engine: CacheEngine;
  beforeEach(async () => {
    clock = fakeClock();
    durable = new FakeDurableTier(clock.now);
    engine = engineWithChanges(clock, durable);
    await engine.set("ns", { key: "g", value: bytes("v"), contentType: "", ttlMs: 1_000, graceMs: 10_000 });
    clock.advance(2_000);
  });

  it("plain reads miss it, from memory and from the durable tier alike", async () => {
    const cold = engineWithChanges(clock, durable);
    for (const e of [engine, cold, engine]) {
      expect(await e.get("ns", "g")).toBeUndefined();
      expect(await e.getMany("ns", ["g", "g"])).toEqual([]);
      expect(await e.has("ns", "g")).toBe(false);
    }
  });

  it("GetOrLease returns it flagged stale, with the lease", async () => {
    const result = await engine.getOrLease("ns", "g", 5_000, 0);
    expect(result.found).toMatchObject({ stale: true, freshRemainingMs: 0 });
    expect(result.leaseToken).toBeTruthy();
  });

  it("touch and delete treat it as absent; delete still removes it", async () => {
    expect(await engine.touch("ns", "g", 60_000)).toBe(false);
    expect((await engine.getOrLease("ns", "g", 5_000, 0)).found?.stale).toBe(true);
    expect(await engine.delete("ns", "g")).toBe(false);
    expect((await engine.getOrLease("ns", "g", 5_000, 0)).found).toBeUndefined();
  });

  it("a fresh value with grace reports the time until it goes stale", async () => {
    await engine.set("ns", { key: "f", value: bytes("v"), contentType: "", ttlMs: 1_000, graceMs: 10_000 });
    expect(await engine.get("ns", "f")).toMatchObject({ stale: false, freshRemainingMs: 1_000, ttlRemainingMs: 11_000 });
  });
});

describe("CacheEngine: a local write overtaken by another instance's change", () => {
  it("keeps neither value in memory: the next read asks the durable tier", async () => {
    const clock = fakeClock();
    const durable = new FakeDurableTier(clock.now);
    const engine = engineWithChanges(clock, durable);
    await engine.set("ns", { key: "k", value: bytes("v1"), contentType: "", ttlMs: 0 });
    let land!: () => void;
    const landed = new Promise<void>((resolve) => (land = resolve));
    const realSetMany = durable.setMany.bind(durable);
    durable.setMany = async (ns, writes) => {
      await realSetMany(ns, writes); // A's write lands first...
      await landed; // ...but its reply is slow
    };
    const writing = engine.set("ns", { key: "k", value: bytes("v2-A"), contentType: "", ttlMs: 0 });
    await new Promise((resolve) => setImmediate(resolve));
    durable.setMany = realSetMany;
    await engineWithChanges(clock, durable).set("ns", { key: "k", value: bytes("v3-B"), contentType: "", ttlMs: 0 }); // B writes later
    engine.applyRemoteChange({ kind: "set", namespace: "ns", keys: ["k"] }); // and A hears it before its own reply
    land();
    await writing;
    expect(await engine.get("ns", "k")).toMatchObject({ tier: "lmdb" });
    expect(text((await engine.get("ns", "k"))?.value)).toBe("v3-B");
  });

  it("after a remote clear or a resync, the same", async () => {
    for (const interrupt of ["clear", "resync"] as const) {
      const clock = fakeClock();
      const durable = new FakeDurableTier(clock.now);
      const engine = engineWithChanges(clock, durable);
      let land!: () => void;
      const landed = new Promise<void>((resolve) => (land = resolve));
      const realSetMany = durable.setMany.bind(durable);
      durable.setMany = async (ns, writes) => {
        await realSetMany(ns, writes);
        await landed;
      };
      const writing = engine.set("ns", { key: "k", value: bytes("mine"), contentType: "", ttlMs: 0 });
      await new Promise((resolve) => setImmediate(resolve));
      if (interrupt === "clear") engine.applyRemoteChange({ kind: "clear", namespace: "ns", keys: [] });
      else engine.forgetRemoteState();
      land();
      await writing;
      expect((await engine.get("ns", "k"))?.tier, interrupt).toBe("lmdb");
    }
  });
});

describe("CacheEngine: two local changes to one key in flight at once", () => {
  it("keep neither value in memory (the durable tier may have applied them in either order)", async () => {
    const clock = fakeClock();
    const durable = new FakeDurableTier(clock.now);
    const engine = engineWithChanges(clock, durable);
    let land!: () => void;
    const landed = new Promise<void>((resolve) => (land = resolve));
    const realSetMany = durable.setMany.bind(durable);
    durable.setMany = async (ns, writes) => {
      await realSetMany(ns, writes);
      if (writes.some((w) => w.key === "slow")) await landed;
    };
    const first = engine.setMany("ns", [
      { key: "k", value: bytes("first"), contentType: "", ttlMs: 0 },
      { key: "slow", value: bytes("x"), contentType: "", ttlMs: 0 },
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    await engine.set("ns", { key: "k", value: bytes("second"), contentType: "", ttlMs: 0 }); // the durable tier now holds "second"
    land();
    await first; // "first" is answered last: memory must not keep it
    expect(text((await engine.get("ns", "k"))?.value)).toBe("second");
  });
});
