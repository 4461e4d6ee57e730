import { describe, expect, it } from "vitest";
import type { RedisClient } from "../../server/tiers/redis-connection.js";
import { IdleBypass } from "../../server/tiers/idle-bypass.js";

/** Just what IdleBypass touches of an ioredis client. */
function fakeClient(queued = () => 0) {
  return {
    options: { enableAutoPipelining: true },
    get autoPipelineQueueSize() {
      return queued();
    },
  } as unknown as RedisClient & { options: { enableAutoPipelining: boolean } };
}

/**
 * Attempts on `bypass` that note whether auto-pipelining was on when they
 * start and again after an await, and wait in between until `release`.
 */
function heldAttempts(client: ReturnType<typeof fakeClient>, bypass: IdleBypass) {
  const seen: boolean[] = [];
  const waiting: (() => void)[] = [];
  const held = () =>
    bypass.run(async () => {
      seen.push(client.options.enableAutoPipelining);
      await new Promise<void>((resolve) => waiting.push(resolve));
      seen.push(client.options.enableAutoPipelining);
    });
  const release = () => waiting.splice(0).forEach((resolve) => resolve());
  return { seen, held, release };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe("IdleBypass", () => {
  it("turns auto-pipelining off only while an attempt of a nearly idle tier issues its commands", async () => {
    const client = fakeClient();
    const bypass = new IdleBypass(client);
    const { seen, held, release } = heldAttempts(client, bypass);
    const first = held();
    expect(client.options.enableAutoPipelining).toBe(true);
    await nextTurn();
    const second = held();
    const third = bypass.run(async () => {
      seen.push(client.options.enableAutoPipelining);
    });
    await third;
    release();
    await Promise.all([first, second]);
    // First alone; second beside one started in an earlier turn: direct. Third beside two: pipelined.
    expect(seen).toEqual([false, false, true, true, true]);
    expect(bypass.inFlight).toBe(0);
  });

  it("lets only the first of a burst started in one turn go direct, so the rest share an auto-pipeline", async () => {
    const client = fakeClient();
    const bypass = new IdleBypass(client);
    const { seen, held, release } = heldAttempts(client, bypass);
    const burst = [held()];
    // Calls of one burst reach the tier after awaits of their own: a microtask boundary is not a new turn.
    await Promise.resolve();
    burst.push(held());
    await nextTurn();
    release();
    await Promise.all(burst);
    expect(seen).toEqual([false, true, true, true]);
  });

  it("pipelines an attempt while a command of the connection waits in an auto-pipeline, however few are in flight", async () => {
    let queued = 1;
    const client = fakeClient(() => queued);
    const bypass = new IdleBypass(client);
    const seen: boolean[] = [];
    const record = () =>
      bypass.run(async () => {
        seen.push(client.options.enableAutoPipelining);
      });
    await record();
    queued = 0;
    await record();
    expect(seen).toEqual([true, false]);
  });

  it("counts an attempt in flight until it settles, fulfilled or rejected, and restores the option when it throws", async () => {
    const client = fakeClient();
    const bypass = new IdleBypass(client);
    let fail!: (err: Error) => void;
    const failing = bypass.run(() => new Promise<void>((_, reject) => (fail = reject)));
    expect(bypass.inFlight).toBe(1);
    fail(new Error("boom"));
    await expect(failing).rejects.toThrow("boom");
    expect(bypass.inFlight).toBe(0);
    expect(() =>
      bypass.run(() => {
        throw new Error("sync");
      }),
    ).toThrow("sync");
    expect(bypass.inFlight).toBe(0);
    expect(client.options.enableAutoPipelining).toBe(true);
  });
});

/**
 * A connection like ioredis's: with auto-pipelining on, a command waits in a
 * queue written at setImmediate; off, it is written at once. A command's
 * promise settles only once it was written (a reply cannot come before).
 */
function fakeConnection() {
  const options = { enableAutoPipelining: true };
  const written: string[] = [];
  let queue: { command: string; done: () => void }[] | undefined;
  const client = {
    options,
    get autoPipelineQueueSize() {
      return queue?.length ?? 0;
    },
  } as unknown as RedisClient;
  const send = (command: string): Promise<void> =>
    new Promise<void>((done) => {
      if (!options.enableAutoPipelining) {
        written.push(command);
        setImmediate(done);
        return;
      }
      if (!queue) {
        queue = [];
        setImmediate(() => {
          const flushed = queue!;
          queue = undefined;
          for (const q of flushed) written.push(q.command);
          setImmediate(() => flushed.forEach((q) => q.done()));
        });
      }
      queue.push({ command, done });
    });
  return { client, written, send };
}

describe("IdleBypass keeps the order of commands on the connection", () => {
  it("does not let a command overtake one waiting in an auto-pipeline when the others in flight settle first", async () => {
    const { client, written, send } = fakeConnection();
    const bypass = new IdleBypass(client);
    const held: (() => void)[] = [];
    const hold = (name: string) =>
      bypass.run(async () => {
        await send(name);
        await new Promise<void>((resolve) => held.push(resolve));
      });
    const first = hold("first");
    const second = hold("second");
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    const queued = bypass.run(() => send("queued"));
    held.forEach((release) => release());
    await Promise.all([first, second]);
    expect(bypass.inFlight).toBe(1);
    const last = bypass.run(() => send("last"));
    await Promise.all([queued, last]);
    expect(written).toEqual(["first", "second", "queued", "last"]);
  });

  it("writes commands in the order their attempts started, however attempts overlap and settle", async () => {
    const { default: fc } = await import("fast-check");
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ holdTicks: fc.nat(3), gapTicks: fc.nat(2) }), { minLength: 1, maxLength: 12 }), async (plan) => {
        const { client, written, send } = fakeConnection();
        const bypass = new IdleBypass(client);
        const tick = () => new Promise((resolve) => setImmediate(resolve));
        const running: Promise<void>[] = [];
        for (const [i, step] of plan.entries()) {
          running.push(
            bypass.run(async () => {
              await send(`c${i}`);
              for (let t = 0; t < step.holdTicks; t++) await tick();
            }),
          );
          for (let t = 0; t < step.gapTicks; t++) await tick();
        }
        await Promise.all(running);
        await tick();
        expect(written).toEqual(plan.map((_, i) => `c${i}`));
      }),
      { numRuns: 300 },
    );
  });
});
