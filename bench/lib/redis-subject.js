/** Whether the project has a usable Redis tier yet (server/tiers/redis-tier.ts with RedisTier.connect). */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { DIST, importDist } from "./paths.js";

export async function redisTierAvailable() {
  if (!existsSync(join(DIST, "server/tiers/redis-tier.js"))) return false;
  try {
    const { RedisTier } = await importDist("server/tiers/redis-tier.js");
    return typeof RedisTier?.connect === "function";
  } catch {
    return false;
  }
}
