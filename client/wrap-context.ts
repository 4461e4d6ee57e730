import { AsyncLocalStorage } from "node:async_hooks";
import { MAX_TAGS_PER_ENTRY } from "../core/tag-rules.js";
import { checkedDuration, checkedTags } from "./argument-checks.js";

/**
 * What a `wrap` loader may say about the value it computes (adaptive
 * caching). Each setter overrides the matching wrap option for this value
 * only; the last call wins.
 */
export interface WrapContext {
  /** Time to live of this value, in ms (0 = the namespace default), instead of the `ttl` option. */
  setTtl(ms: number): void;
  /** Grace of this value, in ms, instead of the `grace` option. */
  setGrace(ms: number): void;
  /** Tags to store this value with (for tag invalidation); throws RpcError INVALID_ARGUMENT past the tag limits, as the `tags` option does. */
  setTags(tags: readonly string[]): void;
  /** Return this value to the caller but do not cache it (the lease is given back). */
  skip(): void;
}

/**
 * The context of one loader run, and what the loader said through it. Once
 * the run ended ({@link LoaderContext.end}), {@link wrapContext} no longer
 * returns it and its setters throw: what they say could not be applied.
 */
export class LoaderContext implements WrapContext {
  ttl: number | undefined;
  grace: number | undefined;
  tags: readonly string[] | undefined;
  skipped = false;
  #ended = false;

  /** Marks the run as over (its value was returned, or it failed or timed out). */
  end(): void {
    this.#ended = true;
    leftContext(this);
  }

  /** Whether the run is over. */
  get ended(): boolean {
    return this.#ended;
  }

  #open(what: string): void {
    if (this.#ended) throw new Error(`${what} was called after its loader run ended: the value was already returned and stored (or not) without it`);
  }

  setTtl(ms: number): void {
    this.#open("ctx.setTtl");
    this.ttl = checkedDuration("ttl", ms);
  }

  setGrace(ms: number): void {
    this.#open("ctx.setGrace");
    this.grace = checkedDuration("grace", ms);
  }

  setTags(tags: readonly string[]): void {
    this.#open("ctx.setTags");
    this.tags = checkedTags(tags, MAX_TAGS_PER_ENTRY, "ctx.setTags");
  }

  skip(): void {
    this.#open("ctx.skip");
    this.skipped = true;
  }
}

const current = new AsyncLocalStorage<LoaderContext>();

/**
 * The contexts of loader runs in progress. Node 20 tracks async context with
 * promise hooks, which slow every promise of the process (an await took
 * about 2.5 times as long here) from the first `run` on: the storage is
 * switched off again whenever no loader run is in progress.
 */
const inProgress = new Set<LoaderContext>();

function leftContext(context: LoaderContext): void {
  if (inProgress.delete(context) && inProgress.size === 0) current.disable();
}

/** Runs `fn` with `context` as the one {@link wrapContext} returns inside it, until `context.end()`. */
export function runInContext<T>(context: LoaderContext, fn: () => T): T {
  if (context.ended) return current.exit(fn);
  inProgress.add(context);
  return current.run(context, fn);
}

/** Whether async context tracking is on (a loader run is in progress); for tests. */
export function contextTrackingOn(): boolean {
  return inProgress.size > 0;
}

/**
 * The context of the loader run this code is part of: inside a method
 * decorated with `@cache.cached(...)` (or any `wrap` loader), the
 * {@link WrapContext} of its run; `undefined` elsewhere, including in
 * callbacks (timers, events) that run after the loader run ended.
 *
 * ```ts
 * class Users {
 *   @cache.cached({ ttl: 60_000 })
 *   async byId(id: number) {
 *     const user = await db.find(id);
 *     if (!user) wrapContext()?.skip();
 *     return user;
 *   }
 * }
 * ```
 */
export function wrapContext(): WrapContext | undefined {
  const context = current.getStore();
  return context === undefined || context.ended ? undefined : context;
}
