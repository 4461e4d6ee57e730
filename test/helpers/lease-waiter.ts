import type { CacheClient } from "../../client/index.js";

/**
 * Sets up a wrap waiting on the server for a lease: `holder` takes the lease
 * of key `held` and keeps loading until `release()`, and `waiter` wraps the
 * same key, so that its GetOrLease waits on its LeaseSession stream. For
 * checking that a failure of another call on that stream leaves it alone.
 */
export async function waiterBehindHeldLease(holder: CacheClient, waiter: CacheClient, namespace: string) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let leased!: () => void;
  const holding = new Promise<void>((resolve) => (leased = resolve));
  const held = holder.wrap("held", async () => {
    leased();
    await gate;
    return "holder's value";
  }, { namespace, ttl: 60_000 });
  await holding;
  let waiterLoads = 0;
  const waited = waiter.wrap("held", async () => {
    waiterLoads++;
    return "waiter's value";
  }, { namespace, ttl: 60_000, leaseWaitMs: 20_000 });
  await new Promise((resolve) => setTimeout(resolve, 100)); // the waiter's GetOrLease reaches the server and waits there
  return {
    /** Lets the holder finish: what the holder and the waiter got, and how often the waiter's own loader ran. */
    async release() {
      open();
      return { held: await held, waited: await waited, waiterLoads };
    },
  };
}
