import { createServer, type Server } from "node:http";
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { CacheEngine } from "./engine/cache-engine.js";
import type { TierStatsSnapshot } from "./engine/namespace-stats.js";
import type { Logger } from "./logger.js";

type CounterField = "hits" | "misses" | "sets" | "deletes" | "evictionsSize" | "evictionsCount" | "expirations";

const TIER_COUNTERS: { field: CounterField; name: string; help: string; cause?: string }[] = [
  { field: "hits", name: "tiercache_hits_total", help: "Reads a tier answered with a value." },
  { field: "misses", name: "tiercache_misses_total", help: "Reads a tier could not answer." },
  { field: "sets", name: "tiercache_sets_total", help: "Values written to a tier." },
  { field: "deletes", name: "tiercache_deletes_total", help: "Keys removed from a tier by Delete, DeleteMany or Clear." },
];

/**
 * A prom-client registry whose metrics are read from the engine's counters at
 * scrape time (the same numbers as the Stats RPC), plus Node process metrics.
 */
export function metricsRegistry(engine: CacheEngine): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const labelNames = ["namespace", "tier"] as const;
  const snapshot = () => engine.stats().flatMap((ns) => ns.tiers.map((tier) => ({ ns: ns.namespace, tier })));

  const counter = (name: string, help: string, read: (t: TierStatsSnapshot) => number) =>
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const { ns, tier } of snapshot()) this.inc({ namespace: ns, tier: tier.tier }, read(tier));
      },
    });
  for (const c of TIER_COUNTERS) counter(c.name, c.help, (t) => t[c.field]);

  new Counter({
    name: "tiercache_evictions_total",
    help: "Entries removed by the memory tier to stay within its bounds or because their TTL passed.",
    labelNames: ["namespace", "tier", "cause"],
    registers: [registry],
    collect() {
      this.reset();
      for (const { ns, tier } of snapshot()) {
        this.inc({ namespace: ns, tier: tier.tier, cause: "size" }, tier.evictionsSize);
        this.inc({ namespace: ns, tier: tier.tier, cause: "count" }, tier.evictionsCount);
        this.inc({ namespace: ns, tier: tier.tier, cause: "ttl" }, tier.expirations);
      }
    },
  });
  const gauge = (name: string, help: string, read: (t: TierStatsSnapshot) => number) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const { ns, tier } of snapshot()) this.set({ namespace: ns, tier: tier.tier }, read(tier));
      },
    });
  gauge("tiercache_entries", "Entries held (memory tier).", (t) => t.entries);
  gauge("tiercache_bytes", "Bytes held, per-entry overhead included (memory tier).", (t) => t.bytes);
  gauge("tiercache_hit_ratio", "hits / (hits + misses) since start.", (t) => t.hitRate);

  const written = (name: string, help: string, read: (ns: { bytesIn: number; bytesStored: number }) => number) =>
    new Counter({
      name,
      help,
      labelNames: ["namespace"],
      registers: [registry],
      collect() {
        this.reset();
        for (const ns of engine.stats()) this.inc({ namespace: ns.namespace }, read(ns));
      },
    });
  written("tiercache_value_bytes_in_total", "Value bytes written, before compression.", (ns) => ns.bytesIn);
  written("tiercache_value_bytes_stored_total", "Envelope bytes stored for those writes, after compression.", (ns) => ns.bytesStored);

  const server = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  server("tiercache_memory_budget_bytes", "The server-wide memory budget (--max-memory); 0 = unbounded.", () => engine.budget?.maxBytes ?? 0);
  server("tiercache_memory_used_bytes", "Bytes counted against the memory budget.", () => engine.budget?.usedBytes ?? 0);
  server("tiercache_memory_budget_evictions", "Entries evicted to keep within the memory budget since start.", () => engine.budget?.evictions ?? 0);
  server("tiercache_namespaces_held", "Namespaces holding data.", () => engine.namespaceCount);
  return registry;
}

/** Serves `GET /metrics` (Prometheus text format) on host:port; resolves with the listening server and its port. */
export async function startMetricsServer(engine: CacheEngine, host: string, port: number, logger: Logger): Promise<{ server: Server; port: number }> {
  const registry = metricsRegistry(engine);
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try GET /metrics\n");
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
      (err: unknown) => {
        logger.error("metrics collection failed", { error: (err as Error).message });
        res.writeHead(500, { "content-type": "text/plain" }).end("metrics collection failed\n");
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return { server, port: typeof address === "object" && address ? address.port : port };
}
