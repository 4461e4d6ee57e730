import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type ServiceClient } from "../../core/grpc-adapter.js";
import { CacheService } from "../../gen/tiercache/v1/cache_pb.js";
import { mib, startServerChild, type ServerChild } from "../helpers/server-child.js";

// Issue #12 (b): deletes of keys that never existed, over many namespaces, with nothing stored.
// Each delete is a change that Watch history keeps; before the global bound, every namespace kept up to
// 100k keys, and this traffic grew RSS by 252 MiB (2,000 namespaces x 1,000 keys), without limit as it went on.
const NAMESPACES = 2000;
const CALLS_PER_NAMESPACE = 10;
const KEYS_PER_CALL = 100;
const HISTORY_BOUND = 8 * 1024 ** 2;
/**
 * RSS growth that is not the history itself, measured on Node 20 / Linux:
 * about 13 MiB with --watch-history-bytes 0 (buffers, JIT), and 27 to 60 MiB
 * as soon as history is retained at all, most of it in the C heap ([heap] in
 * /proc/self/smaps), which stays after the history is trimmed to nothing
 * (allocator fragmentation from garbage collections of the retained events).
 */
const FIXED_OVERHEAD = 72 * 1024 ** 2;

describe("Watch history under deletes of keys that never existed", () => {
  let server: ServerChild;
  let client: ServiceClient<typeof CacheService>;

  beforeAll(async () => {
    server = await startServerChild(["--storage", "memory", "--max-namespaces", `${NAMESPACES + 10}`, "--watch-history-bytes", `${HISTORY_BOUND}`]);
    client = createClient(CacheService, server.address, credentials.createInsecure());
  }, 60_000);
  afterAll(async () => {
    client?.close();
    await server?.stop();
  });

  it(`stays within --watch-history-bytes: ${NAMESPACES} namespaces x ${CALLS_PER_NAMESPACE * KEYS_PER_CALL} deletes`, async () => {
    const pad = "x".repeat(48);
    // Every namespace in use (and the code warm) before the baseline.
    for (let n = 0; n < NAMESPACES; n++) await client.deleteMany({ namespace: `ns${n}`, keys: [`warm-${pad}`] });
    const before = await server.memory();

    let most = 0;
    for (let call = 0; call < CALLS_PER_NAMESPACE; call++) {
      for (let n = 0; n < NAMESPACES; n += 25) {
        await Promise.all(
          Array.from({ length: 25 }, (_, j) => client.deleteMany({ namespace: `ns${n + j}`, keys: Array.from({ length: KEYS_PER_CALL }, (_, i) => `never-${call}-${i}-${pad}`) })),
        );
        if (n % 500 === 0) most = Math.max(most, (await server.watchHistory()).retainedBytes);
      }
    }
    const after = await server.memory();
    const history = await server.watchHistory();
    most = Math.max(most, history.retainedBytes);
    const growth = (after.rssAnon ?? after.rss) - (before.rssAnon ?? before.rss);
    console.log(
      `${NAMESPACES * CALLS_PER_NAMESPACE * KEYS_PER_CALL} deletes of keys that never existed: rss ${mib(before.rss)} -> ${mib(after.rss)} ` +
        `(growth ${mib(growth)}${after.rssAnon === undefined ? "" : ", anonymous"}), heap ${mib(before.heap)} -> ${mib(after.heap)}, ` +
        `history ${mib(history.retainedBytes)} of ${mib(HISTORY_BOUND)} (most seen ${mib(most)}), namespace logs ${history.namespaceLogs}`,
    );
    expect(history.maxRetainedBytes).toBe(HISTORY_BOUND);
    expect(most).toBeLessThanOrEqual(HISTORY_BOUND);
    expect(history.retainedBytes).toBeGreaterThan(HISTORY_BOUND / 2); // the history was used, up to its bound
    expect(after.heap - before.heap).toBeLessThan(HISTORY_BOUND);
    expect(growth).toBeLessThan(HISTORY_BOUND + FIXED_OVERHEAD);
  }, 180_000);
});
