import { createServer, type Server } from "node:http";
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import { BoundHistogram, type HistogramChild } from "./observability/bound-histogram.js";
import { CacheService } from "../gen/tiercache/v1/cache_pb.js";
import type { CacheEngine } from "./engine/cache-engine.js";
import type { NamespaceStatsSnapshot, TierStatsSnapshot } from "./engine/namespace-stats.js";
import type { Logger } from "./logger.js";
import type { Readiness } from "./observability/readiness.js";
import { NamespaceSeriesGroups } from "./observability/namespace-series.js";
import { RpcMetrics, RPC_DURATION_BUCKETS } from "./observability/rpc-metrics.js";
import { StatusReporter } from "./observability/status-report.js";
import { STATUS_PAGE_HTML } from "./observability/status-page.js";
import { DURABLE_OPERATIONS, type DurableCall, type DurableCallHook, type DurableOperation } from "./tiers/observed-durable-tier.js";

type CounterField = "hits" | "misses" | "sets" | "deletes";

const TIER_COUNTERS: { field: CounterField; name: string; help: string }[] = [
  { field: "hits", name: "tiercache_hits_total", help: "Reads a tier answered with a value." },
  { field: "misses", name: "tiercache_misses_total", help: "Reads a tier could not answer." },
  { field: "sets", name: "tiercache_sets_total", help: "Values written to a tier." },
  { field: "deletes", name: "tiercache_deletes_total", help: "Keys removed from a tier by Delete, DeleteMany or Clear." },
];

const BREAKER_STATES = ["closed", "open", "half-open"] as const;

/** What the metrics read besides the engine's counters. */
export interface MetricsSources {
  readonly engine: CacheEngine;
  /** The remote tier's circuit breaker state, "" without one. */
  readonly breaker: () => string;
  /** Entries and bytes the durable tier holds, when it can tell without a scan; undefined otherwise. */
  readonly durableFootprint: () => { entries: number; bytes: number } | undefined;
  /** Namespaces with series of their own; the others are summed under namespace="_other". */
  readonly maxNamespaces: number;
}

/**
 * The server's metrics: the per-RPC and durable-call metrics recorded as
 * calls end, the engine's metrics read from its counters at scrape time (the
 * same numbers as the Stats RPC; see {@link ServerMetrics.addEngine}), and
 * Node process metrics.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly rpc: RpcMetrics;
  /** Times each durable-tier call (a hook of `ObservedDurableTier`). */
  readonly timeDurableCall: DurableCallHook;

  /** `durableTier`: the durable tier's name ("redis"…), undefined without one. */
  constructor(durableTier: string | undefined) {
    collectDefaultMetrics({ register: this.registry });
    this.rpc = new RpcMetrics(this.registry, CacheService);
    this.timeDurableCall = durableCallMetrics(this.registry, durableTier ?? "");
  }

  /** The shared rendering of this registry, counted by `tiercache_metrics_renders_total`. */
  sharedRender(maxAgeMs: number): SharedRender {
    const shared = new SharedRender(() => this.#render(), maxAgeMs);
    new Counter({
      name: "tiercache_metrics_renders_total",
      help: "Renderings of /metrics made; scrapes within --metrics-max-age of one (or during it) share it.",
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(shared.renders);
      },
    });
    return shared;
  }

  /** Adds the metrics read from the engine and the durable tier at scrape time. */
  addEngine(sources: MetricsSources): void {
    this.#forgetEngineSnapshot = engineMetrics(this.registry, sources);
  }

  #forgetEngineSnapshot = () => {};

  /** One rendering of every metric, reading the engine's counters once. */
  #render(): Promise<string> {
    this.#forgetEngineSnapshot();
    return this.registry.metrics().finally(() => this.#forgetEngineSnapshot());
  }
}

/** Adds the engine's metrics; returns what forgets the grouping of the namespaces made for one rendering. */
function engineMetrics(registry: Registry, { engine, breaker, durableFootprint, maxNamespaces }: MetricsSources): () => void {
  const labelNames = ["namespace", "tier"] as const;
  const groups = new NamespaceSeriesGroups(maxNamespaces);
  // One grouping of the engine's counters per rendering, shared by every collector (forgotten before and after each rendering).
  let current: NamespaceStatsSnapshot[] | undefined;
  let tiers: { ns: string; tier: TierStatsSnapshot }[] | undefined;
  const namespaces = () => (current ??= groups.group(engine.stats()));
  const snapshot = () => (tiers ??= namespaces().flatMap((ns) => ns.tiers.map((tier) => ({ ns: ns.namespace, tier }))));

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
      // Only the memory tier evicts or expires entries itself: durable-tier series would stay 0 forever.
      for (const { ns, tier } of snapshot()) {
        if (tier.tier !== "memory") continue;
        this.inc({ namespace: ns, tier: tier.tier, cause: "size" }, tier.evictionsSize);
        this.inc({ namespace: ns, tier: tier.tier, cause: "count" }, tier.evictionsCount);
        this.inc({ namespace: ns, tier: tier.tier, cause: "ttl" }, tier.expirations);
      }
    },
  });
  const memoryGauge = (name: string, help: string, read: (t: TierStatsSnapshot) => number) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const { ns, tier } of snapshot()) if (tier.tier === "memory") this.set({ namespace: ns, tier: tier.tier }, read(tier));
      },
    });
  memoryGauge("tiercache_entries", "Entries the memory tier holds, per namespace.", (t) => t.entries);
  memoryGauge("tiercache_bytes", "Bytes the memory tier holds, per-entry overhead included, per namespace.", (t) => t.bytes);

  const perNamespace = (name: string, help: string, read: (ns: { bytesIn: number; bytesStored: number; degradedWrites: number; tagInvalidations: number }) => number) =>
    new Counter({
      name,
      help,
      labelNames: ["namespace"],
      registers: [registry],
      collect() {
        this.reset();
        for (const ns of namespaces()) this.inc({ namespace: ns.namespace }, read(ns));
      },
    });
  perNamespace("tiercache_value_bytes_in_total", "Value bytes written, before compression.", (ns) => ns.bytesIn);
  perNamespace("tiercache_value_bytes_stored_total", "Envelope bytes stored for those writes, after compression.", (ns) => ns.bytesStored);
  perNamespace("tiercache_degraded_writes_total", "Writes kept in the memory tier only because the durable tier was unavailable (--degraded-writes).", (ns) => ns.degradedWrites);
  perNamespace("tiercache_tag_invalidations_total", "InvalidateTags calls that took effect.", (ns) => ns.tagInvalidations);

  const serverGauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  serverGauge("tiercache_memory_budget_bytes", "The server-wide memory budget (--max-memory); 0 = unbounded.", () => engine.budget?.maxBytes ?? 0);
  serverGauge("tiercache_memory_used_bytes", "Bytes counted against the memory budget.", () => engine.budget?.usedBytes ?? 0);
  serverGauge("tiercache_namespaces_held", "Namespaces holding data.", () => engine.namespaceCount);
  new Counter({
    name: "tiercache_memory_budget_evictions_total",
    help: "Entries evicted to keep within the memory budget.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(engine.budget?.evictions ?? 0);
    },
  });

  if (breaker() !== "") {
    new Gauge({
      name: "tiercache_durable_breaker_state",
      help: "The remote durable tier's circuit breaker: 1 for the state it is in, 0 for the others.",
      labelNames: ["tier", "state"],
      registers: [registry],
      collect() {
        const now = breaker();
        for (const state of BREAKER_STATES) this.set({ tier: engine.durableTier ?? "", state }, state === now ? 1 : 0);
      },
    });
  }
  if (durableFootprint() !== undefined) {
    const footprint = (name: string, help: string, read: (f: { entries: number; bytes: number }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["tier"],
        registers: [registry],
        collect() {
          const now = durableFootprint();
          if (now) this.set({ tier: engine.durableTier ?? "" }, read(now));
        },
      });
    footprint("tiercache_durable_entries", "Entries the durable tier holds, all namespaces (expired ones not yet swept included).", (f) => f.entries);
    footprint("tiercache_durable_bytes", "Bytes of the durable tier's storage pages holding entries.", (f) => f.bytes);
  }
  return () => {
    current = undefined;
    tiers = undefined;
  };
}

function durableCallMetrics(registry: Registry, tier: string): DurableCallHook {
  const histogram = new BoundHistogram(
    "tiercache_durable_call_duration_seconds",
    "Time of one call to the durable tier (retries and breaker included), by operation and outcome.",
    RPC_DURATION_BUCKETS,
    registry,
  );
  const bound = {} as Record<DurableOperation, [HistogramChild, HistogramChild]>;
  for (const operation of DURABLE_OPERATIONS) {
    bound[operation] = [histogram.child({ tier, operation, outcome: "ok" }), histogram.child({ tier, operation, outcome: "error" })];
  }
  return <T>({ operation }: DurableCall, run: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    return run().then(
      (result) => {
        bound[operation][0].observe((performance.now() - start) / 1000);
        return result;
      },
      (err: unknown) => {
        bound[operation][1].observe((performance.now() - start) / 1000);
        throw err;
      },
    );
  };
}

/**
 * One rendering of the metrics, shared: scrapes that arrive while it is made,
 * or less than `maxAgeMs` after it was made, get the same text. Bounds what
 * scrapers cost the server to one rendering per `maxAgeMs`, however many.
 */
export class SharedRender {
  /** Renderings made so far. */
  renders = 0;
  #body: Promise<string> | undefined;
  /** When the current rendering was finished (Infinity while it is made). */
  #doneAt = -Infinity;

  constructor(
    private readonly render: () => Promise<string>,
    private readonly maxAgeMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The current rendering, or a new one when it is older than `maxAgeMs`. */
  get(): Promise<string> {
    if (this.#body !== undefined && this.now() - this.#doneAt < this.maxAgeMs) return this.#body;
    if (this.#body !== undefined && this.#doneAt === Infinity) return this.#body;
    this.renders++;
    const body = this.render();
    this.#body = body;
    this.#doneAt = Infinity;
    body.then(
      () => {
        if (this.#body === body) this.#doneAt = this.now();
      },
      () => {
        if (this.#body === body) this.#body = undefined;
      },
    );
    return body;
  }
}

/** What the HTTP endpoint serves. */
export interface MetricsEndpoints {
  readonly metrics: ServerMetrics;
  readonly status: StatusReporter;
  readonly readiness: () => Readiness;
  /** How long one rendering of /metrics is shared (see {@link SharedRender}). */
  readonly maxAgeMs: number;
}

function json(body: unknown): string {
  return `${JSON.stringify(body)}\n`;
}

/**
 * Serves on host:port: `GET /metrics` (Prometheus text), `/healthz` (200
 * while the process serves), `/readyz` (200 when ready for traffic, else 503
 * with `{"ready":false,"reason":…}`), `/status.json` and the status page at
 * `/`. Resolves with the listening server and its port.
 */
export async function startMetricsServer(endpoints: MetricsEndpoints, host: string, port: number, logger: Logger): Promise<{ server: Server; port: number }> {
  const { metrics, status, readiness } = endpoints;
  const registry = metrics.registry;
  const rendering = metrics.sharedRender(endpoints.maxAgeMs);
  const failed = (what: string, res: import("node:http").ServerResponse) => (err: unknown) => {
    logger.error(`${what} failed`, { error: (err as Error).message });
    res.writeHead(500, { "content-type": "text/plain" }).end(`${what} failed\n`);
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "content-type": "text/plain", allow: "GET, HEAD" }).end("method not allowed\n");
      return;
    }
    switch (path) {
      case "/metrics":
        rendering.get().then((body) => res.writeHead(200, { "content-type": registry.contentType }).end(body), failed("metrics collection", res));
        return;
      case "/healthz":
        res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(json({ live: true }));
        return;
      case "/readyz": {
        const now = readiness();
        res.writeHead(now.ready ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" }).end(json(now));
        return;
      }
      case "/status.json":
        try {
          res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(json(status.report()));
        } catch (err) {
          failed("status report", res)(err);
        }
        return;
      case "/":
        res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(STATUS_PAGE_HTML);
        return;
      default:
        res.writeHead(404, { "content-type": "text/plain" }).end("not found: try GET /metrics, /healthz, /readyz, /status.json or /\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return { server, port: typeof address === "object" && address ? address.port : port };
}
