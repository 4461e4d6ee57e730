import type { Logger } from "../logger.js";
import { dataNodes, type RedisClient } from "./redis-connection.js";
import { withinMs } from "./within-ms.js";

/**
 * What a Redis node's `maxmemory-policy` means for tags: the hash of a
 * namespace's tag epochs (`<prefix>:{ns}#tags`) has no TTL, so only an
 * `allkeys-*` policy may evict it; losing it resets every epoch to 0 and
 * serves invalidated values again.
 */
export type EvictionPolicyVerdict =
  /** `noeviction` or a `volatile-*` policy: the tag hash is never evicted. */
  | { readonly kind: "safe"; readonly policy: string }
  /** An `allkeys-*` policy: the tag hash may be evicted. */
  | { readonly kind: "evicts-tags"; readonly policy: string }
  /** CONFIG GET failed (renamed or disabled, as managed Redis services often do): not known. */
  | { readonly kind: "unknown"; readonly reason: string };

/** The verdict for one policy name. */
export function judgeEvictionPolicy(policy: string): EvictionPolicyVerdict {
  return policy.startsWith("allkeys-") ? { kind: "evicts-tags", policy } : { kind: "safe", policy };
}

/** Reads `maxmemory-policy` on every data node (each master of a Cluster), each within `timeoutMs`; the worst verdict. Never throws. */
export async function checkEvictionPolicy(client: RedisClient, timeoutMs: number): Promise<EvictionPolicyVerdict> {
  const nodes = dataNodes(client);
  if (nodes.length === 0) return { kind: "unknown", reason: "no node known" };
  let worst: EvictionPolicyVerdict | undefined;
  for (const node of nodes) {
    let verdict: EvictionPolicyVerdict;
    try {
      const reply = await withinMs(node.call("CONFIG", "GET", "maxmemory-policy"), timeoutMs);
      const policy = Array.isArray(reply) && typeof reply[1] === "string" ? reply[1] : undefined;
      verdict = policy === undefined ? { kind: "unknown", reason: "no maxmemory-policy in the CONFIG GET reply" } : judgeEvictionPolicy(policy);
    } catch (err) {
      verdict = { kind: "unknown", reason: err instanceof Error ? err.message.slice(0, 120) : "CONFIG GET failed" };
    }
    if (verdict.kind === "evicts-tags") return verdict;
    if (worst === undefined || verdict.kind === "unknown") worst = verdict;
  }
  return worst ?? { kind: "unknown", reason: "no node known" };
}

/** Logs a warning when the verdict says tag invalidations may be lost (or could not be checked). */
export function warnAboutEvictionPolicy(verdict: EvictionPolicyVerdict, logger: Logger, where: string): void {
  if (verdict.kind === "evicts-tags") {
    logger.warn(
      `REDIS EVICTION POLICY ${verdict.policy} MAY EVICT THE TAG EPOCHS: invalidated tagged values can be served again after an eviction; ` +
        "use noeviction or a volatile-* policy if you use tags",
      { redis: where, maxmemoryPolicy: verdict.policy },
    );
  } else if (verdict.kind === "unknown") {
    logger.warn(
      "could not check the Redis eviction policy (CONFIG GET maxmemory-policy failed); tags hold only under noeviction or a volatile-* policy",
      { redis: where, reason: verdict.reason },
    );
  }
}
