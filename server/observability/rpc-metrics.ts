import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { ServerInterceptingCall, status, type ServerInterceptor } from "@grpc/grpc-js";
import { Counter, type Registry } from "prom-client";
import { BoundHistogram, type HistogramChild } from "./bound-histogram.js";

/** Latency buckets in seconds: 50 µs to 5 s, about three per decade. */
export const RPC_DURATION_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** How close to its deadline a cancelled call counts as DEADLINE_EXCEEDED. */
const DEADLINE_SLACK_MS = 25;

/** Names of the gRPC status codes, by number ("OK", "INVALID_ARGUMENT"…). */
const CODE_NAMES: readonly string[] = Object.entries(status)
  .filter((entry): entry is [string, number] => typeof entry[1] === "number")
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name);

/** What the metrics keep of one RPC method: its calls by status code and its latency histogram (labels bound once). */
interface MethodSeries {
  readonly method: string;
  readonly streaming: boolean;
  /** Calls ended, indexed by status code. */
  readonly byCode: Float64Array;
  readonly duration: HistogramChild;
}

function recordIn(series: MethodSeries, code: number, seconds: number): void {
  series.byCode[code >= 0 && code < series.byCode.length ? code : status.UNKNOWN]!++;
  series.duration.observe(seconds);
}

/** Calls of one method by status code, as the status page shows them. */
export interface MethodCalls {
  readonly method: string;
  readonly streaming: boolean;
  readonly total: number;
  /** Calls that did not end OK, less the streams the client cancelled (a client closing a Watch is normal). */
  readonly errors: number;
}

/**
 * Per-RPC metrics of one service: `tiercache_rpc_requests_total{method,code}`
 * and `tiercache_rpc_duration_seconds{method}`, recorded by a grpc-js server
 * interceptor ({@link RpcMetrics.interceptor}) when a call ends. Per call this
 * costs one array increment and one histogram observation; label children
 * are bound once per method.
 */
export class RpcMetrics {
  readonly #byPath = new Map<string, MethodSeries>();

  constructor(registry: Registry, service: DescService) {
    const histogram = new BoundHistogram(
      "tiercache_rpc_duration_seconds",
      "Time from a call's arrival to its status being sent, by method (streams: the stream's life).",
      RPC_DURATION_BUCKETS,
      registry,
    );
    for (const method of service.methods) {
      const streaming = method.methodKind !== "unary";
      const series: MethodSeries = { method: method.name, streaming, byCode: new Float64Array(CODE_NAMES.length), duration: histogram.child({ method: method.name }) };
      this.#byPath.set(`/${service.typeName}/${method.name}`, series);
    }
    const all = [...this.#byPath.values()];
    new Counter({
      name: "tiercache_rpc_requests_total",
      help: "Calls ended, by method and gRPC status code (OK for success).",
      labelNames: ["method", "code"],
      registers: [registry],
      collect() {
        this.reset();
        for (const series of all) {
          // OK is always present, so a method's series exist before its first call.
          series.byCode.forEach((n, code) => {
            if (n > 0 || code === status.OK) this.inc({ method: series.method, code: CODE_NAMES[code]! }, n);
          });
        }
      },
    });
  }

  /**
   * Records a call that a stream carried as one of its messages (a
   * LeaseSession's GetOrLease, Set or ReleaseLease) as a call of that
   * method, so that per-method counts and latencies include it.
   */
  recordCarried(method: DescMethod, code: number, seconds: number): void {
    const series = this.#byPath.get(`/${method.parent.typeName}/${method.name}`);
    if (series !== undefined) recordIn(series, code, seconds);
  }

  /** Calls ended so far, per method. */
  calls(): MethodCalls[] {
    return [...this.#byPath.values()].map((s) => {
      const total = s.byCode.reduce((a, b) => a + b, 0);
      const closedByClient = s.streaming ? s.byCode[status.CANCELLED]! : 0;
      return { method: s.method, streaming: s.streaming, total, errors: total - s.byCode[status.OK]! - closedByClient };
    });
  }

  /**
   * Latency bucket counts (not cumulative) of the unary methods together, one
   * per {@link RPC_DURATION_BUCKETS} bound plus +Inf (streams are left out:
   * their duration is how long they stayed open).
   */
  unaryLatencyBuckets(): number[] {
    const counts = new Array<number>(RPC_DURATION_BUCKETS.length + 1).fill(0);
    for (const series of this.#byPath.values()) {
      if (!series.streaming) series.duration.counts.forEach((n, i) => (counts[i]! += n));
    }
    return counts;
  }

  /**
   * A grpc-js server interceptor that records every call of the service when
   * it ends: with the status sent, or CANCELLED / DEADLINE_EXCEEDED when it
   * ended without one. List it first among the server's interceptors: it
   * then wraps grpc-js's own call object, whose `sendStatus` also carries the
   * statuses grpc-js sends by itself (a request over the message size limit,
   * the client's deadline), which pass no interceptor.
   */
  interceptor(): ServerInterceptor {
    return (descriptor, call) => {
      const series = this.#byPath.get(descriptor.path);
      if (series === undefined) return new ServerInterceptingCall(call);
      const start = performance.now();
      let ended = false;
      const end = (code: number) => {
        if (ended) return;
        ended = true;
        recordIn(series, code, (performance.now() - start) / 1000);
      };
      // The server's copy of the client's deadline runs late by the request's transit time, so a client whose own
      // deadline passed may cancel just before it: a cancel that close to the deadline counts as the deadline.
      const deadlinePassed = () => {
        const deadline = call.getDeadline();
        return (deadline instanceof Date ? deadline.getTime() : deadline) <= Date.now() + DEADLINE_SLACK_MS;
      };
      const send = call.sendStatus.bind(call);
      call.sendStatus = (sent) => {
        end(sent.code);
        send(sent);
      };
      return new ServerInterceptingCall(call, {
        start: (next) => next({ onCancel: () => end(deadlinePassed() ? status.DEADLINE_EXCEEDED : status.CANCELLED) }),
      });
    };
  }
}
