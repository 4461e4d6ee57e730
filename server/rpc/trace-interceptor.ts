import { ServerInterceptingCall, status, type Metadata, type ServerInterceptor } from "@grpc/grpc-js";
import { context, propagation, ROOT_CONTEXT, SpanKind, trace, type Context, type Span } from "@opentelemetry/api";
import { endRpcSpan, metadataGetter, rpcSpanName, tracer, tracingOn } from "../../core/rpc-tracing.js";

/**
 * A grpc-js server interceptor that gives every call a SERVER span, child of
 * the W3C trace context the client sent in its metadata (`traceparent`).
 * The span is the active context while grpc-js runs the handler (it calls
 * it from the events this interceptor passes on), so the durable-tier spans
 * of the call are its children. It ends with the status the client gets,
 * whoever sent it: the handler, the adapter (refused, malformed, deadline)
 * or another interceptor; list it first so that it sees them all.
 *
 * Without a registered tracer provider it hands the call through untouched.
 */
export function traceInterceptor(): ServerInterceptor {
  return (method, call) => {
    // Handing the call through is what a pass-through ServerInterceptingCall would do, without allocating one.
    if (!tracingOn()) return call as ServerInterceptingCall;
    let span: Span | undefined;
    let active: Context = ROOT_CONTEXT;
    const inSpan = (next: () => void) => context.with(active, next);
    const finish = (code: status, details: string | undefined) => {
      if (span === undefined) return;
      endRpcSpan(span, code, details, "server");
      span = undefined;
    };
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata: Metadata, pass: (metadata: Metadata) => void) => {
            const parent = propagation.extract(ROOT_CONTEXT, metadata, metadataGetter);
            const { name, attributes } = rpcSpanName(method.path);
            span = tracer().startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
            active = trace.setSpan(parent, span);
            inSpan(() => pass(metadata));
          },
          onReceiveMessage: (message: unknown, pass: (message: unknown) => void) => inSpan(() => pass(message)),
          onReceiveHalfClose: (pass: () => void) => inSpan(pass),
          onCancel: () => finish(status.CANCELLED, "cancelled by the client"),
        }),
      sendStatus: (sent, pass) => {
        finish(sent.code, sent.details);
        pass(sent);
      },
    });
  };
}
