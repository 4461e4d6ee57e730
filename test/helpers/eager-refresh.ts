import { expect } from "vitest";
import type { CacheClient } from "../../client/index.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The eager-refresh scenario both deployments run: one client loads "k"
 * ("v1"); every client wraps it twice early in its TTL (served, no load);
 * `advance` moves past the refresh point; every client wraps it twice again:
 * all are served "v1" at once and the loader runs exactly once more ("v2").
 */
export async function expectOneEagerRefresh(clients: readonly CacheClient[], options: { ttl: number; eagerRefresh: number }, advance: () => void, loaderMs: number): Promise<void> {
  let loads = 0;
  const loader = async () => {
    loads++;
    await sleep(loaderMs);
    return `v${loads}`;
  };
  const everyClientTwice = () => Promise.all(clients.flatMap((c) => [c.wrap("k", loader, options), c.wrap("k", loader, options)]));
  const settled = () => Promise.all(clients.map((c) => c.settled()));
  expect(await clients[0]!.wrap("k", loader, options)).toBe("v1");
  await clients[0]!.settled();
  expect((await everyClientTwice()).every((v) => v === "v1")).toBe(true);
  await settled();
  expect(loads).toBe(1);
  advance();
  expect((await everyClientTwice()).every((v) => v === "v1")).toBe(true);
  await settled();
  expect(loads).toBe(2);
}
