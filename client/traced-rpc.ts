import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import { context, propagation, SpanKind, trace, type Span } from "@opentelemetry/api";
import type { CallOptions, ServiceClient } from "../core/grpc-adapter.js";
import { endRpcSpan, endSpanWithError, metadataSetter, rpcSpanName, tracer, tracingOn } from "../core/rpc-tracing.js";

type AnyMethod = (request: unknown, options?: CallOptions) => unknown;

/** Starts the CLIENT span of a call and returns the call's options with its `traceparent` in the metadata. */
function startCall(method: DescMethod, options: CallOptions | undefined): { span: Span; options: CallOptions } {
  const { name, attributes } = rpcSpanName(`/${method.parent.typeName}/${method.name}`);
  const parent = context.active();
  const span = tracer().startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent);
  const metadata = options?.metadata?.clone() ?? new Metadata();
  propagation.inject(trace.setSpan(parent, span), metadata, metadataSetter);
  return { span, options: { ...options, metadata } };
}

async function* tracedStream(responses: AsyncIterable<unknown>, span: Span): AsyncIterable<unknown> {
  let ended = false;
  try {
    yield* responses;
    ended = true;
    endRpcSpan(span, 0, undefined, "client");
  } catch (err) {
    ended = true;
    endSpanWithError(span, err, "client");
    throw err;
  } finally {
    if (!ended) span.end(); // the caller stopped reading
  }
}

function traced(method: DescMethod, call: AnyMethod): AnyMethod {
  const streamsResponses = method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";
  return (request, options) => {
    if (!tracingOn()) return call(request, options);
    const started = startCall(method, options);
    const { span } = started;
    if (streamsResponses) return tracedStream(call(request, started.options) as AsyncIterable<unknown>, span);
    return (call(request, started.options) as Promise<unknown>).then(
      (response) => {
        endRpcSpan(span, 0, undefined, "client");
        return response;
      },
      (err: unknown) => {
        endSpanWithError(span, err, "client");
        throw err;
      },
    );
  };
}

/**
 * `client` with a CLIENT span around every call of `service` but those named
 * in `untraced` (by local name, e.g. the background `watch` stream). Each call
 * carries its span's W3C trace context (`traceparent`) in its metadata, through
 * the global propagator, so the server's span becomes its child. Without a
 * registered tracer provider calls go straight through.
 */
export function tracedClient<S extends DescService>(service: S, client: ServiceClient<S>, untraced: readonly string[] = []): ServiceClient<S> {
  const methods = client as unknown as Record<string, AnyMethod>;
  const wrapped: Record<string, unknown> = { close: () => client.close(), grpcClient: client.grpcClient };
  for (const method of service.methods) {
    const call = methods[method.localName]!;
    wrapped[method.localName] = untraced.includes(method.localName) ? call : traced(method, call);
  }
  return wrapped as ServiceClient<S>;
}
