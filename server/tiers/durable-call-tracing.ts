import { context, SpanKind, SpanStatusCode, trace, type Attributes } from "@opentelemetry/api";
import { tracer, tracingOn } from "../../core/rpc-tracing.js";
import type { DurableCall, DurableCallHook } from "./observed-durable-tier.js";

/**
 * Makes every call of the durable tier `system` a CLIENT span named `<db.system> <operation>`
 * ("redis get", "lmdb setMany"), child of the active context: the server span
 * of the RPC the call serves. Attributes follow the database semantic
 * conventions (`db.system`, `db.operation.name`, `db.operation.batch.size`)
 * plus `tiercache.namespace`. A call that fails marks its span failed.
 *
 * Without a registered tracer provider each call goes straight through.
 */
export function traceDurableCalls(system: string): DurableCallHook {
  return <T>({ operation, namespace, batch }: DurableCall, run: () => Promise<T>): Promise<T> => {
    if (!tracingOn()) return run();
    const attributes: Attributes = { "db.system": system, "db.operation.name": operation, "tiercache.namespace": namespace };
    if (batch !== undefined) attributes["db.operation.batch.size"] = batch;
    const span = tracer().startSpan(`${system} ${operation}`, { kind: SpanKind.CLIENT, attributes });
    return context.with(trace.setSpan(context.active(), span), run).then(
      (result) => {
        span.end();
        return result;
      },
      (error: unknown) => {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        span.end();
        throw error;
      },
    );
  };
}
