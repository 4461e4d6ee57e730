/**
 * Every scenario, in the order they run: one module each, registered here.
 * A scenario exports `{ name, description, run(ctx) }`; run resolves to
 * `{ rows, table? }` (see lib/report.js).
 */
import clientLocalTier from "./client-local-tier.js";
import compression from "./compression.js";
import hitRatio from "./hit-ratio.js";
import memoryPerEntry from "./memory-per-entry.js";
import memoryTierOps from "./memory-tier-ops.js";
import redisBulk from "./redis-bulk.js";
import redisServiceGet from "./redis-service-get.js";
import redisTier from "./redis-tier.js";
import serviceGet from "./service-get.js";
import streamGet from "./stream-get.js";
import tagInvalidation from "./tag-invalidation.js";
import wrapZipf from "./wrap-zipf.js";

export const scenarios = [
  serviceGet,
  streamGet,
  memoryTierOps,
  memoryPerEntry,
  compression,
  hitRatio,
  tagInvalidation,
  // Scenarios whose subject is still being written: baselines measured, subjects reported "not available yet".
  redisServiceGet,
  redisTier,
  redisBulk,
  clientLocalTier,
  wrapZipf,
];
