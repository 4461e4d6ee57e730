import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { PushQueue } from "../../client/push-queue.js";
import { createClient } from "../../core/grpc-adapter.js";
import { RpcError, statusName } from "../../core/rpc-error.js";
import { CacheService, type LeaseSessionRequestSchema } from "../../gen/tiercache/v1/cache_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { startServerChild, type ServerChild } from "../helpers/server-child.js";

/**
 * The client's assumption "a stream the server ends OK has answered every call it read" checked end to end against a
 * real server process with LMDB: a raw client that never half-closes keeps its stream full of Sets of unique keys
 * while the server drains, with its own event loop blocked for 1.5 s in the middle (so the 500 ms linger ends with
 * messages unread). After the stream ends OK, the data dir is reopened by a new server: every key whose Set was
 * answered OK is there, every key whose Set was answered not_run or left unanswered is not.
 */
let children: ServerChild[] = [];
let dir: string | undefined;
afterEach(async () => {
  for (const c of children) await c.stop().catch(() => {});
  children = [];
  if (dir) rmSync(dir, { recursive: true, force: true });
});
const busy = (ms: number) => { const end = Date.now() + ms; while (Date.now() < end) { /* busy */ } };

describe("a stream the server ends OK during a drain left no read call unanswered", () => {
  for (const blockMs of [0, 1500]) {
    it(`unanswered and not_run Sets never took effect (client blocked ${blockMs} ms)`, async () => {
      dir = mkdtempSync(join(tmpdir(), "tiercache-drain-ok-"));
      const a = await startServerChild(["--storage", "lmdb", "--data-dir", dir, "--shutdown-grace", "5s"]);
      children.push(a);
      const raw = createClient(CacheService, a.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
      const requests = new PushQueue<MessageInitShape<typeof LeaseSessionRequestSchema>>();
      const outcome = new Map<bigint, string>();
      let inFlight = 0;
      let max = 1;
      let next = 1n;
      let streamEnd = "";
      let ended = false;
      const send = () => {
        while (!ended && inFlight < max) {
          const id = next++;
          inFlight++;
          outcome.set(id, "unanswered");
          requests.push({ id, timeoutMs: 10_000, call: { case: "set", value: { namespace: "d", key: `k${id}`, value: new Uint8Array([1]), ttlMs: 600_000n } } });
        }
      };
      const reading = (async () => {
        try {
          for await (const r of raw.leaseSession(requests, { deadline: Infinity })) {
            if (r.result.case === "ready") { max = r.result.value.maxInFlight; send(); continue; }
            if (r.result.case === "draining") { outcome.set(0n, "draining seen"); continue; }
            inFlight--;
            outcome.set(r.id, r.result.case === "error" ? (r.result.value.notRun ? "not_run" : `error ${r.result.value.code}`) : "ok");
            setImmediate(send);
          }
          streamEnd = "OK";
        } catch (e) {
          streamEnd = e instanceof RpcError ? statusName(e.code) : String(e);
        } finally {
          ended = true;
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      a.child.send("stop");
      if (blockMs > 0) { await new Promise((r) => setTimeout(r, 20)); busy(blockMs); }
      await reading;
      await new Promise<void>((r) => (a.exited() ? r() : a.child.once("exit", () => r())));
      raw.close();
      children = [];
      const b = await startServerChild(["--storage", "lmdb", "--data-dir", dir]);
      children.push(b);
      const check = createClient(CacheService, b.address, credentials.createInsecure(), { defaultTimeoutMs: 10_000 });
      const wrong: string[] = [];
      const counts: Record<string, number> = {};
      for (const [id, what] of outcome) {
        if (id === 0n) continue;
        counts[what] = (counts[what] ?? 0) + 1;
        const found = (await check.get({ namespace: "d", key: `k${id}` })).found;
        if ((what === "ok") !== found) wrong.push(`${id}:${what}:found=${found}`);
      }
      check.close();
      console.log("outcomes", JSON.stringify({ blockMs, streamEnd, counts }));
      expect(streamEnd).toBe("OK");
      expect(wrong).toEqual([]);
    }, 60_000);
  }
});
