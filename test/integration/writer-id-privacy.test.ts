import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../core/grpc-adapter.js";
import { RpcError, Status } from "../../core/rpc-error.js";
import { CacheService, WatchEventKind, type WatchResponse } from "../../gen/tiercache/v1/cache_pb.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";
import { warmLocal } from "../helpers/warm-local.js";

/**
 * A client's Watch stream leaves out the Sets made under its writer_id, so
 * that id must stay the client's own. helper-98's review learnt a client's id
 * from the SET events every watcher received, then wrote under it: that
 * client served its old local copy until its TTL ran out (60 s), far past
 * the Watch bound.
 */
describe("a client's writer_id", () => {
  let t: TestServer;
  let raw: ReturnType<typeof createClient<typeof CacheService>>;
  beforeAll(async () => {
    t = await startTestServer({ storage: "memory" });
    raw = createClient(CacheService, t.server.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
  });
  afterAll(async () => {
    raw.close();
    await t.dispose();
  });

  it("never reaches another watcher: the SET events of its writes name no writer", async () => {
    const namespace = "writer-privacy";
    const writer = t.newClient({ namespace, localTier: true });
    await writer.set("marker", 0);
    await warmLocal(writer, "marker");
    const controller = new AbortController();
    const seen: WatchResponse[] = [];
    const watching = (async () => {
      for await (const event of raw.watch({ cursors: [{ namespace }] }, { signal: controller.signal, deadline: Infinity })) {
        seen.push(event);
        if (event.kind === WatchEventKind.SET && event.keys.includes("k")) return;
      }
    })().catch((err: unknown) => {
      if (!controller.signal.aborted) throw err;
    });
    await expect.poll(() => seen.some((e) => e.kind === WatchEventKind.READY)).toBe(true);
    expect(await writer.wrap("k", () => "V0", { ttl: 60_000, lease: false })).toBe("V0"); // a Set under its writer_id
    await writer.settled();
    await watching;
    controller.abort();
    const set = seen.find((e) => e.kind === WatchEventKind.SET && e.keys.includes("k"))!;
    expect(set.writerId).toBe("");
    expect(set.writeSeq).toBe(0n);
    expect(writer.getLocal("k")).toBe("V0");
    await writer.close();
  });

  it("must be 16 bytes or more: a short one, likely shared by several clients, is refused", async () => {
    const set = raw.set({ namespace: "writer-privacy", key: "short-writer", value: new Uint8Array([1]), writerId: "orders-service" });
    await expect(set).rejects.toSatisfy((err: unknown) => RpcError.is(err, Status.INVALID_ARGUMENT) && /writer_id is shorter than 16 bytes/.test((err as Error).message));
    expect((await raw.get({ namespace: "writer-privacy", key: "short-writer" })).found).toBe(false);
  });
});
