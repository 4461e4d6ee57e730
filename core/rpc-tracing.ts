import { ProxyTracerProvider, SpanStatusCode, trace, type Attributes, type Span, type TextMapGetter, type TextMapSetter, type Tracer } from "@opentelemetry/api";
import type { Metadata } from "@grpc/grpc-js";
import { RpcError } from "./rpc-error.js";

/** Instrumentation scope of every tiercache span. */
export const TRACER_NAME = "tiercache";

const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();
const API_GLOBALS = Symbol.for("opentelemetry.js.api.1");
type ApiGlobals = { trace?: unknown };
/** The registry once it exists (the API creates it at the first registration and never replaces it). */
let apiGlobals: ApiGlobals | undefined;

/**
 * Whether an application registered a tracer provider. Without one every span
 * would be a no-op, so callers skip starting spans and building metadata
 * carriers altogether: the cost of tracing when it is off is this check.
 */
export function tracingOn(): boolean {
  // The API's registry of globals (major version 1): no `trace` entry there means no provider is registered,
  // cheaper than `trace.getTracerProvider()`, which checks version compatibility on every call.
  apiGlobals ??= (globalThis as { [API_GLOBALS]?: ApiGlobals })[API_GLOBALS];
  if (apiGlobals?.trace === undefined) return false;
  const provider = trace.getTracerProvider() as Partial<ProxyTracerProvider>;
  return provider.getDelegate?.() !== NOOP_PROVIDER;
}

/** The tiercache tracer of the registered provider. */
export function tracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/** Reads W3C trace context headers from grpc-js metadata. */
export const metadataGetter: TextMapGetter<Metadata> = {
  keys: (carrier) => Object.keys(carrier.getMap()),
  get: (carrier, key) => {
    const values = carrier.get(key);
    return values.length === 0 ? undefined : values.map(String);
  },
};

/** Writes W3C trace context headers into grpc-js metadata. */
export const metadataSetter: TextMapSetter<Metadata> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** The span name and semantic-convention attributes of the RPC at `path` ("/pkg.Service/Method"). */
export function rpcSpanName(path: string): { name: string; attributes: Attributes } {
  const name = path.startsWith("/") ? path.slice(1) : path;
  const slash = name.lastIndexOf("/");
  return { name, attributes: { "rpc.system": "grpc", "rpc.service": name.slice(0, slash), "rpc.method": name.slice(slash + 1) } };
}

/** gRPC codes that mark a server span as failed (OpenTelemetry RPC semantic conventions); every non-OK code fails a client span. */
const SERVER_ERROR_CODES = new Set([2, 4, 12, 13, 14, 15]);

/** Ends `span` with the call's gRPC status code, marking it failed per the semantic conventions of its side. */
export function endRpcSpan(span: Span, code: number, details: string | undefined, side: "client" | "server"): void {
  span.setAttribute("rpc.grpc.status_code", code);
  if (code !== 0 && (side === "client" || SERVER_ERROR_CODES.has(code))) {
    span.setStatus(details === undefined ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.ERROR, message: details });
  }
  span.end();
}

/** Ends `span` after a failure: with the gRPC code of an {@link RpcError}, or as failed with the exception recorded. */
export function endSpanWithError(span: Span, error: unknown, side: "client" | "server"): void {
  if (error instanceof RpcError) return endRpcSpan(span, error.code, error.details, side);
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  span.end();
}
