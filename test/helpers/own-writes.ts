import { InterceptingCall, type Interceptor } from "@grpc/grpc-js";
import { expect } from "vitest";
import type { CacheClient, CacheClientOptions } from "../../client/index.js";
import { eventually } from "./eventually.js";
import type { TestServer } from "./test-server.js";
import { warmLocal } from "./warm-local.js";

/** A writer without a local tier, and a reader whose local tier already serves "marker" (so its Watch is READY). */
export async function writerAndReader(t: TestServer, namespace: string, reader: Partial<CacheClientOptions>): Promise<{ writer: CacheClient; reader: CacheClient }> {
  const writer = t.newClient({ namespace });
  const watching = t.newClient({ namespace, localTier: true, ...reader });
  await writer.set("marker", 0);
  await warmLocal(watching, "marker");
  return { writer, reader: watching };
}

/**
 * Has `writer` store "old" at "k", then the reader's `wrap` of "k" serve it
 * and start an eager refresh to "new", whose write `holdWrites` (called just
 * before) holds back.
 */
export async function refreshHeldBack(writer: CacheClient, reader: CacheClient, holdWrites: () => void = () => {}): Promise<void> {
  await writer.set("k", "old", { ttl: 60_000 });
  await new Promise((resolve) => setTimeout(resolve, 150));
  holdWrites();
  expect(await reader.wrap("k", () => "new", { ttl: 60_000, eagerRefresh: 0.001 })).toBe("old");
}

/** Waits until `writer` reads `value` at "k", then until the reader's Watch has passed a later change: every event up to it has been applied. */
export async function settledAt(writer: CacheClient, reader: CacheClient, value: unknown): Promise<void> {
  await eventually(async () => (await writer.get("k")) === value);
  await writer.set("marker", Date.now());
  await eventually(() => reader.getLocal("marker") === undefined);
}

/** Counts the client's Watch calls. */
export function watchCounter(): { interceptor: Interceptor; calls: () => number } {
  let calls = 0;
  const interceptor: Interceptor = (options, nextCall) => {
    if (options.method_definition.path.endsWith("/Watch")) calls++;
    return new InterceptingCall(nextCall(options));
  };
  return { interceptor, calls: () => calls };
}
