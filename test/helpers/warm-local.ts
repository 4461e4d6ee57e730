import type { CacheClient } from "../../client/index.js";
import { eventually } from "./eventually.js";

/** Reads `key` until the client's local tier holds it (the namespace's Watch is READY and the value cached), for at most 5 s. */
export async function warmLocal(client: CacheClient, key: string, namespace?: string): Promise<void> {
  const options = namespace === undefined ? undefined : { namespace };
  await eventually(async () => {
    await client.get(key, options);
    return client.getLocal(key, options) !== undefined;
  });
}
