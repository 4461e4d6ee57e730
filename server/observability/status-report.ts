import type { CacheEngine } from "../engine/cache-engine.js";
import type { NamespaceStatsSnapshot } from "../engine/namespace-stats.js";
import type { Readiness } from "./readiness.js";
import { RPC_DURATION_BUCKETS, type RpcMetrics } from "./rpc-metrics.js";

/** One namespace in the status page's table. */
export interface NamespaceStatus {
  namespace: string;
  entries: number;
  bytes: number;
  /** Reads answered by any tier, since start. */
  hits: number;
  /** Reads no tier could answer, since start. */
  misses: number;
  sets: number;
  degradedWrites: number;
}

/** What `GET /status.json` returns (and the status page shows). */
export interface StatusReport {
  /** ms since the epoch. */
  time: number;
  uptimeSeconds: number;
  ready: Readiness;
  /** The durable tier's name, or "memory" without one. */
  storage: string;
  /** The remote tier's circuit breaker ("closed", "open", "half-open"), "" without one. */
  breaker: string;
  /** Seconds the rates below cover: ~10, or the time since the last poll when polls are further apart (null until two samples were taken). */
  windowSeconds: number | null;
  /** Calls ended per second over the window, all methods. */
  requestsPerSecond: number | null;
  /** Calls ended with a status other than OK, per second. */
  errorsPerSecond: number | null;
  /** hits / (hits + misses) over the window, all namespaces; null without reads. */
  hitRatio: number | null;
  /** Unary-call latency quantiles over the window in seconds, estimated from the histogram buckets; null without calls. */
  latency: { p50: number | null; p99: number | null };
  memory: { budgetBytes: number; usedBytes: number };
  durable: { entries: number; bytes: number } | null;
  totals: { requests: number; errors: number; hits: number; misses: number };
  /** Namespaces holding data (all of them), of which `namespaces` lists the busiest. */
  namespacesHeld: number;
  namespaces: NamespaceStatus[];
  methods: { method: string; total: number; errors: number }[];
}

interface Sample {
  at: number;
  requests: number;
  errors: number;
  hits: number;
  misses: number;
  buckets: number[];
}

/** Samples kept (at most one per {@link MIN_SAMPLE_GAP_MS}): bounds the reporter's memory. */
const MAX_SAMPLES = 32;
const MIN_SAMPLE_GAP_MS = 400;
/** Rates cover about this much time, when samples that old exist. */
const WINDOW_MS = 10_000;
/** Namespaces listed in the table. */
export const MAX_NAMESPACES_LISTED = 50;

function totalsOf(ns: NamespaceStatsSnapshot): { hits: number; misses: number } {
  const hits = ns.tiers.reduce((sum, t) => sum + t.hits, 0);
  // A read misses only when the last tier misses.
  return { hits, misses: ns.tiers[ns.tiers.length - 1]?.misses ?? 0 };
}

/**
 * Quantile `q` of the observations counted in cumulative `buckets` (one per
 * {@link RPC_DURATION_BUCKETS} bound, then +Inf), interpolated within the
 * bucket as Prometheus's histogram_quantile does.
 */
export function bucketQuantile(q: number, buckets: readonly number[]): number | null {
  const total = buckets[buckets.length - 1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < RPC_DURATION_BUCKETS.length; i++) {
    const upTo = buckets[i]!;
    if (upTo >= rank) {
      const lower = i === 0 ? 0 : RPC_DURATION_BUCKETS[i - 1]!;
      const below = i === 0 ? 0 : buckets[i - 1]!;
      const inBucket = upTo - below;
      return inBucket <= 0 ? lower : lower + (RPC_DURATION_BUCKETS[i]! - lower) * ((rank - below) / inBucket);
    }
  }
  return RPC_DURATION_BUCKETS[RPC_DURATION_BUCKETS.length - 1]!;
}

function cumulative(counts: readonly number[]): number[] {
  let sum = 0;
  return counts.map((n) => (sum += n));
}

/** What a {@link StatusReporter} reads. */
export interface StatusSources {
  readonly engine: CacheEngine;
  readonly rpc: RpcMetrics;
  readonly readiness: () => Readiness;
  readonly breaker: () => string;
  readonly durableFootprint: () => { entries: number; bytes: number } | undefined;
}

/**
 * Builds the status report. Rates and quantiles come from the difference
 * between now and a sample taken up to ~10 s ago (or the last one, when
 * reports are asked for less often). A report is built only
 * when asked for, at most one per 400 ms (callers in between get the last
 * one), and at most 32 samples are kept: the cost is bounded however many
 * pages poll, and nothing runs when nobody looks.
 */
export class StatusReporter {
  readonly #sources: StatusSources;
  readonly #started = Date.now();
  readonly #samples: Sample[] = [];
  #last: StatusReport | undefined;

  constructor(sources: StatusSources) {
    this.#sources = sources;
  }

  report(): StatusReport {
    const now = Date.now();
    if (this.#last && now - this.#last.time < MIN_SAMPLE_GAP_MS && now >= this.#last.time) return this.#last;
    this.#last = this.#build(now);
    return this.#last;
  }

  #build(now: number): StatusReport {
    const { engine, rpc } = this.#sources;
    const stats = engine.stats();
    const methods = rpc.calls();
    let hits = 0;
    let misses = 0;
    for (const ns of stats) {
      const t = totalsOf(ns);
      hits += t.hits;
      misses += t.misses;
    }
    const requests = methods.reduce((sum, m) => sum + m.total, 0);
    const errors = methods.reduce((sum, m) => sum + m.errors, 0);
    const sample: Sample = { at: now, requests, errors, hits, misses, buckets: cumulative(rpc.unaryLatencyBuckets()) };
    const base = this.#baseFor(now);
    this.#keep(sample);

    const seconds = base ? (now - base.at) / 1000 : null;
    // Clamped: a namespace that went empty leaves the sums (its counters are archived).
    const delta = (field: "requests" | "errors" | "hits" | "misses") => (base ? Math.max(0, sample[field] - base[field]) : 0);
    const reads = delta("hits") + delta("misses");
    const windowBuckets = base ? sample.buckets.map((n, i) => Math.max(0, n - base.buckets[i]!)) : [];
    const budget = engine.budget;
    const durable = this.#sources.durableFootprint();
    const namespaces = stats
      .map((ns) => {
        const memory = ns.tiers[0];
        return { namespace: ns.namespace, entries: memory?.entries ?? 0, bytes: memory?.bytes ?? 0, ...totalsOf(ns), sets: memory?.sets ?? 0, degradedWrites: ns.degradedWrites };
      })
      .sort((a, b) => b.hits + b.misses + b.sets - (a.hits + a.misses + a.sets) || a.namespace.localeCompare(b.namespace))
      .slice(0, MAX_NAMESPACES_LISTED);
    return {
      time: now,
      uptimeSeconds: Math.round((now - this.#started) / 1000),
      ready: this.#sources.readiness(),
      storage: engine.durableTier ?? "memory",
      breaker: this.#sources.breaker(),
      windowSeconds: seconds,
      requestsPerSecond: seconds ? delta("requests") / seconds : null,
      errorsPerSecond: seconds ? delta("errors") / seconds : null,
      hitRatio: reads > 0 ? delta("hits") / reads : null,
      latency: { p50: base ? bucketQuantile(0.5, windowBuckets) : null, p99: base ? bucketQuantile(0.99, windowBuckets) : null },
      memory: { budgetBytes: budget?.maxBytes ?? 0, usedBytes: budget?.usedBytes ?? 0 },
      durable: durable ?? null,
      totals: { requests, errors, hits, misses },
      namespacesHeld: engine.namespaceCount,
      namespaces,
      methods: methods.map(({ method, total, errors: failed }) => ({ method, total, errors: failed })),
    };
  }

  /**
   * The oldest sample within the window, at least a sample gap old; when none
   * is that recent (a script polling less often than the window), the latest
   * sample at least a gap old, however long ago.
   */
  #baseFor(now: number): Sample | undefined {
    const old = (s: Sample) => now - s.at >= MIN_SAMPLE_GAP_MS;
    return this.#samples.find((s) => now - s.at <= WINDOW_MS && old(s)) ?? this.#samples.findLast(old);
  }

  #keep(sample: Sample): void {
    const last = this.#samples[this.#samples.length - 1];
    if (last && sample.at - last.at < MIN_SAMPLE_GAP_MS) return;
    this.#samples.push(sample);
    while (this.#samples.length > MAX_SAMPLES || (this.#samples.length > 1 && sample.at - this.#samples[0]!.at > WINDOW_MS * 2)) this.#samples.shift();
  }
}
