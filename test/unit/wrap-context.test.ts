import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { contextTrackingOn, LoaderContext, runInContext, wrapContext } from "../../client/wrap-context.js";

/** Runs `body` as a loader run with a fresh context, ending it when `body` settles, as Wrapper does. */
async function loaderRun<T>(body: (ctx: LoaderContext) => Promise<T>): Promise<{ ctx: LoaderContext; value: T }> {
  const ctx = new LoaderContext();
  try {
    return { ctx, value: await runInContext(ctx, () => body(ctx)) };
  } finally {
    ctx.end();
  }
}

describe("loader contexts", () => {
  it("an outer run keeps its context after a nested run ends, and tracking stops when both ended", async () => {
    const seen: (unknown)[] = [];
    const { ctx: outer } = await loaderRun(async (ctx) => {
      seen.push(wrapContext() === ctx);
      const { ctx: inner } = await loaderRun(async (innerCtx) => {
        await sleep(1);
        seen.push(wrapContext() === innerCtx);
        return 1;
      });
      expect(inner.ended).toBe(true);
      await sleep(1);
      seen.push(wrapContext() === ctx);
      return 2;
    });
    expect(seen).toEqual([true, true, true]);
    expect(outer.ended).toBe(true);
    expect(wrapContext()).toBeUndefined();
    expect(contextTrackingOn()).toBe(false);
  });

  it("concurrent runs each keep their own context while another one ends", async () => {
    let releaseSlow!: () => void;
    const slowGate = new Promise<void>((resolve) => (releaseSlow = resolve));
    const slow = loaderRun(async (ctx) => {
      await slowGate;
      await sleep(1);
      return wrapContext() === ctx;
    });
    const fast = await loaderRun(async (ctx) => {
      await sleep(1);
      return wrapContext() === ctx;
    });
    expect(fast.value).toBe(true);
    expect(contextTrackingOn()).toBe(true);
    releaseSlow();
    expect((await slow).value).toBe(true);
    expect(contextTrackingOn()).toBe(false);
  });

  it("a run started again after tracking stopped has its context (tracking comes back on)", async () => {
    for (let i = 0; i < 3; i++) {
      const { value } = await loaderRun(async (ctx) => {
        await sleep(0);
        return wrapContext() === ctx;
      });
      expect(value).toBe(true);
      expect(contextTrackingOn()).toBe(false);
    }
  });

  it("a callback that runs after its loader run ended sees no context", async () => {
    let later: Promise<unknown> | undefined;
    await loaderRun(async () => {
      later = sleep(5).then(() => wrapContext());
      return 0;
    });
    expect(await later).toBeUndefined();
  });

  it("running with an ended context gives no context, and leaves tracking off", async () => {
    const ctx = new LoaderContext();
    ctx.end();
    expect(runInContext(ctx, () => wrapContext())).toBeUndefined();
    expect(contextTrackingOn()).toBe(false);
  });
});
