import { credentials } from "@grpc/grpc-js";
import { createClient } from "../../core/grpc-adapter.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { eventually } from "./eventually.js";

/**
 * Retries a Set of `key` = "v" in `namespace` through the server at
 * `address` until one succeeds (within `ms`: the server's Redis may come up
 * late), then reads the key back and returns the text it holds.
 */
export async function storesOnceReachable(address: string, namespace: string, key: string, ms: number): Promise<string> {
  const raw = createClient(CacheService, address, credentials.createInsecure(), { defaultTimeoutMs: 2_000 });
  try {
    await eventually(async () => {
      try {
        await raw.set({ namespace, key, value: new TextEncoder().encode("v"), contentType: "text/plain" });
        return true;
      } catch {
        return false;
      }
    }, ms);
    const got = await raw.get({ namespace, key });
    return new TextDecoder().decode(got.value);
  } finally {
    raw.close();
  }
}
