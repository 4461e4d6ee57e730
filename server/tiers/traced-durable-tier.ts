import { context, SpanKind, SpanStatusCode, trace, type Attributes } from "@opentelemetry/api";
import { tracer, tracingOn } from "../../core/rpc-tracing.js";
import type { CallScope, DurableFootprint, DurableTier, DurableWrite } from "../engine/durable-tier.js";

/**
 * A durable tier whose every call is a CLIENT span named `<db.system> <operation>`
 * ("redis get", "lmdb setMany"), child of the active context: the server span
 * of the RPC the call serves. Attributes follow the database semantic
 * conventions (`db.system`, `db.operation.name`, `db.operation.batch.size`)
 * plus `tiercache.namespace`. A call that fails marks its span failed.
 *
 * Without a registered tracer provider each call goes straight through.
 */
export class TracedDurableTier implements DurableTier {
  readonly #tier: DurableTier;
  readonly #system: string;

  constructor(tier: DurableTier) {
    this.#tier = tier;
    this.#system = tier.name;
  }

  get name(): DurableTier["name"] {
    return this.#tier.name;
  }

  #traced<T>(operation: string, namespace: string, batch: number | undefined, run: () => Promise<T>): Promise<T> {
    if (!tracingOn()) return run();
    const attributes: Attributes = { "db.system": this.#system, "db.operation.name": operation, "tiercache.namespace": namespace };
    if (batch !== undefined) attributes["db.operation.batch.size"] = batch;
    const span = tracer().startSpan(`${this.#system} ${operation}`, { kind: SpanKind.CLIENT, attributes });
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
  }

  get(namespace: string, key: string, scope?: CallScope): Promise<Uint8Array | undefined> {
    return this.#traced("get", namespace, undefined, () => this.#tier.get(namespace, key, scope));
  }

  getMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<(Uint8Array | undefined)[]> {
    return this.#traced("getMany", namespace, keys.length, () => this.#tier.getMany(namespace, keys, scope));
  }

  set(namespace: string, write: DurableWrite, scope?: CallScope): Promise<void> {
    return this.#traced("set", namespace, undefined, () => this.#tier.set(namespace, write, scope));
  }

  setMany(namespace: string, writes: readonly DurableWrite[], scope?: CallScope): Promise<void> {
    return this.#traced("setMany", namespace, writes.length, () => this.#tier.setMany(namespace, writes, scope));
  }

  delete(namespace: string, key: string, scope?: CallScope): Promise<boolean> {
    return this.#traced("delete", namespace, undefined, () => this.#tier.delete(namespace, key, scope));
  }

  deleteMany(namespace: string, keys: readonly string[], scope?: CallScope): Promise<number> {
    return this.#traced("deleteMany", namespace, keys.length, () => this.#tier.deleteMany(namespace, keys, scope));
  }

  has(namespace: string, key: string, scope?: CallScope): Promise<boolean> {
    return this.#traced("has", namespace, undefined, () => this.#tier.has(namespace, key, scope));
  }

  touch(namespace: string, key: string, expiresAt: number, scope?: CallScope): Promise<boolean> {
    return this.#traced("touch", namespace, undefined, () => this.#tier.touch(namespace, key, expiresAt, scope));
  }

  clear(namespace: string, scope?: CallScope): Promise<void> {
    return this.#traced("clear", namespace, undefined, () => this.#tier.clear(namespace, scope));
  }

  /** Not traced: it reads the tier's own bookkeeping. */
  footprint(): DurableFootprint | undefined {
    return this.#tier.footprint?.();
  }

  close(): Promise<void> {
    return this.#tier.close();
  }
}
