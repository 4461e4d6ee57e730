import { Cluster } from "ioredis";
import { describe, expect, it } from "vitest";
import type { RedisClient } from "../../server/tiers/redis-connection.js";
import { WriteCoalescing } from "../../server/tiers/write-coalescing.js";

/** Just what WriteCoalescing touches of an ioredis Cluster client (no socket of its own: auto-pipelining). */
function fakeClient(queued = () => 0) {
  const client = Object.create(Cluster.prototype) as object;
  Object.defineProperty(client, "options", { value: { enableAutoPipelining: true } });
  Object.defineProperty(client, "autoPipelineQueueSize", { get: queued });
  return client as RedisClient & { options: { enableAutoPipelining: boolean } };
}

/**
 * Attempts on `coalescing` that note whether auto-pipelining was on when they
 * start and again after an await, and wait in between until `release`.
 */
function heldAttempts(client: ReturnType<typeof fakeClient>, coalescing: WriteCoalescing) {
  const seen: boolean[] = [];
  const waiting: (() => void)[] = [];
  const held = () =>
    coalescing.run(async () => {
      seen.push(client.options.enableAutoPipelining);
      await new Promise<void>((resolve) => waiting.push(resolve));
      seen.push(client.options.enableAutoPipelining);
    });
  const release = () => waiting.splice(0).forEach((resolve) => resolve());
  return { seen, held, release };
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** Attempts on `coalescing` that issue their commands with `issue`, then stay in flight until `release`. */
function holding(coalescing: WriteCoalescing, issue: (name: string) => unknown) {
  const waiting: (() => void)[] = [];
  const hold = (name: string) =>
    coalescing.run(async () => {
      await issue(name);
      await new Promise<void>((resolve) => waiting.push(resolve));
    });
  const release = () => waiting.splice(0).forEach((resolve) => resolve());
  return { hold, release };
}

describe("WriteCoalescing on a Cluster (auto-pipelining)", () => {
  it("turns auto-pipelining off only while an attempt of a nearly idle tier issues its commands", async () => {
    const client = fakeClient();
    const coalescing = new WriteCoalescing(client);
    const { seen, held, release } = heldAttempts(client, coalescing);
    const first = held();
    expect(client.options.enableAutoPipelining).toBe(true);
    await nextTurn();
    const second = held();
    const third = coalescing.run(async () => {
      seen.push(client.options.enableAutoPipelining);
    });
    await third;
    release();
    await Promise.all([first, second]);
    // First alone; second beside one started in an earlier turn: direct. Third beside two: pipelined.
    expect(seen).toEqual([false, false, true, true, true]);
    expect(coalescing.inFlight).toBe(0);
  });

  it("lets only the first of a burst started in one turn go direct, so the rest share an auto-pipeline", async () => {
    const client = fakeClient();
    const coalescing = new WriteCoalescing(client);
    const { seen, held, release } = heldAttempts(client, coalescing);
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
    const coalescing = new WriteCoalescing(client);
    const seen: boolean[] = [];
    const record = () =>
      coalescing.run(async () => {
        seen.push(client.options.enableAutoPipelining);
      });
    await record();
    queued = 0;
    await record();
    expect(seen).toEqual([true, false]);
  });

  it("counts an attempt in flight until it settles, fulfilled or rejected, and restores the option when it throws", async () => {
    const client = fakeClient();
    const coalescing = new WriteCoalescing(client);
    let fail!: (err: Error) => void;
    const failing = coalescing.run(() => new Promise<void>((_, reject) => (fail = reject)));
    expect(coalescing.inFlight).toBe(1);
    fail(new Error("boom"));
    await expect(failing).rejects.toThrow("boom");
    expect(coalescing.inFlight).toBe(0);
    expect(() =>
      coalescing.run(() => {
        throw new Error("sync");
      }),
    ).toThrow("sync");
    expect(coalescing.inFlight).toBe(0);
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
  const client = Object.create(Cluster.prototype) as RedisClient;
  Object.defineProperty(client, "options", { value: options });
  Object.defineProperty(client, "autoPipelineQueueSize", { get: () => queue?.length ?? 0 });
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

describe("WriteCoalescing on a Cluster keeps the order of commands on the connection", () => {
  it("does not let a command overtake one waiting in an auto-pipeline when the others in flight settle first", async () => {
    const { client, written, send } = fakeConnection();
    const coalescing = new WriteCoalescing(client);
    const { hold, release } = holding(coalescing, send);
    const first = hold("first");
    const second = hold("second");
    await nextTurn();
    await nextTurn();
    const queued = coalescing.run(() => send("queued"));
    release();
    await Promise.all([first, second]);
    expect(coalescing.inFlight).toBe(1);
    const last = coalescing.run(() => send("last"));
    await Promise.all([queued, last]);
    expect(written).toEqual(["first", "second", "queued", "last"]);
  });

  it("writes commands in the order their attempts started, however attempts overlap and settle", async () => {
    const { default: fc } = await import("fast-check");
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ holdTicks: fc.nat(3), gapTicks: fc.nat(2) }), { minLength: 1, maxLength: 12 }), async (plan) => {
        const { client, written, send } = fakeConnection();
        const coalescing = new WriteCoalescing(client);
        const tick = () => new Promise((resolve) => setImmediate(resolve));
        const running: Promise<void>[] = [];
        for (const [i, step] of plan.entries()) {
          running.push(
            coalescing.run(async () => {
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

/**
 * A standalone connection's socket: written chunks go out at once, or, while
 * corked, together in one write when uncorked (as a net.Socket's writev).
 */
function fakeSocketClient({ autoPipelining = false, connected = true } = {}) {
  const writes: string[][] = [];
  let corked: string[] | undefined;
  const socket = {
    cork() {
      corked ??= [];
    },
    uncork() {
      if (corked && corked.length > 0) writes.push(corked);
      corked = undefined;
    },
    write(chunk: string) {
      if (corked) corked.push(chunk);
      else writes.push([chunk]);
    },
    get corked() {
      return corked !== undefined;
    },
  };
  const options = { enableAutoPipelining: autoPipelining };
  const client = { options, autoPipelineQueueSize: 0, ...(connected && { stream: socket }) } as unknown as RedisClient;
  return { client, socket, writes, options };
}

describe("WriteCoalescing on one socket (standalone, Sentinel)", () => {
  it("writes the first operation of a burst at once and the rest in one write at setImmediate", async () => {
    const { client, socket, writes } = fakeSocketClient();
    const coalescing = new WriteCoalescing(client);
    const running = [0, 1, 2, 3, 4].map((i) =>
      coalescing.run(async () => {
        socket.write(`c${i}`);
      }),
    );
    expect(writes).toEqual([["c0"]]);
    expect(socket.corked).toBe(true);
    await nextTurn();
    expect(writes).toEqual([["c0"], ["c1", "c2", "c3", "c4"]]);
    expect(socket.corked).toBe(false);
    await Promise.all(running);
    expect(coalescing.inFlight).toBe(0);
  });

  it("writes a later turn's operations at that turn's end, without waiting for the replies of those in flight", async () => {
    const { client, socket, writes } = fakeSocketClient();
    const coalescing = new WriteCoalescing(client);
    const { hold, release } = holding(coalescing, (name) => socket.write(name));
    const first = ["a0", "a1", "a2"].map(hold);
    await nextTurn();
    const second = ["b0", "b1"].map(hold);
    await nextTurn();
    expect(writes).toEqual([["a0"], ["a1", "a2"], ["b0", "b1"]]);
    release();
    await Promise.all([...first, ...second]);
    expect(coalescing.inFlight).toBe(0);
  });

  it("shares one write among calls that arrive in separate callbacks of one phase of the event loop, as gRPC requests do", async () => {
    const { client, socket, writes } = fakeSocketClient();
    const coalescing = new WriteCoalescing(client);
    const { hold, release } = holding(coalescing, (name) => socket.write(name));
    const running: Promise<void>[] = [];
    for (const name of ["c0", "c1", "c2", "c3", "c4"]) setImmediate(() => running.push(hold(name)));
    await nextTurn();
    await nextTurn();
    expect(writes).toEqual([["c0"], ["c1", "c2", "c3", "c4"]]);
    release();
    await Promise.all(running);
  });

  it("keeps auto-pipelining off while an attempt issues its commands, even on a client given with it on", async () => {
    const { client, socket, options } = fakeSocketClient({ autoPipelining: true });
    const coalescing = new WriteCoalescing(client);
    const seen: boolean[] = [];
    const running = [0, 1, 2].map((i) =>
      coalescing.run(async () => {
        seen.push(options.enableAutoPipelining);
        socket.write(`c${i}`);
      }),
    );
    await Promise.all(running);
    expect(seen).toEqual([false, false, false]);
    expect(options.enableAutoPipelining).toBe(true);
  });

  it("uncorks the socket it corked when the connection gets a new one in the same turn, and corks the new one in a later turn", async () => {
    const { client, socket: old, writes: oldWrites } = fakeSocketClient();
    const { socket: fresh, writes: freshWrites } = fakeSocketClient();
    const coalescing = new WriteCoalescing(client);
    const connection = client as unknown as { stream: typeof old };
    const { hold, release } = holding(coalescing, (name) => connection.stream.write(name));
    const running = [hold("a0"), hold("a1")];
    expect(old.corked).toBe(true);
    connection.stream = fresh;
    running.push(hold("b0"));
    await nextTurn();
    expect([old.corked, fresh.corked]).toEqual([false, false]);
    expect(oldWrites).toEqual([["a0"], ["a1"]]);
    expect(freshWrites).toEqual([["b0"]]);
    running.push(hold("c0"), hold("c1"));
    expect(fresh.corked).toBe(true);
    await nextTurn();
    expect(fresh.corked).toBe(false);
    expect(freshWrites).toEqual([["b0"], ["c0", "c1"]]);
    release();
    await Promise.all(running);
  });

  it("runs attempts on a client that has no socket yet (they fail in ioredis, not here)", async () => {
    const { client } = fakeSocketClient({ connected: false });
    const coalescing = new WriteCoalescing(client);
    const results = await Promise.all([1, 2, 3].map((i) => coalescing.run(async () => i)));
    expect(results).toEqual([1, 2, 3]);
  });

  it("writes every command by the end of the turn that issued it, in the order written, however attempts overlap and settle", async () => {
    const { default: fc } = await import("fast-check");
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ holdTicks: fc.nat(3), gapTicks: fc.nat(2), commands: fc.integer({ min: 1, max: 3 }) }), { minLength: 1, maxLength: 12 }), async (plan) => {
        const { client, socket, writes } = fakeSocketClient();
        const coalescing = new WriteCoalescing(client);
        const running: Promise<void>[] = [];
        let issued = 0;
        for (const [i, step] of plan.entries()) {
          running.push(
            coalescing.run(async () => {
              for (let c = 0; c < step.commands; c++) socket.write(`c${i}.${c}`);
              for (let t = 0; t < step.holdTicks; t++) await nextTurn();
            }),
          );
          issued += step.commands;
          for (let t = 0; t < step.gapTicks; t++) {
            await nextTurn();
            expect(socket.corked).toBe(false);
            expect(writes.flat()).toHaveLength(issued);
          }
        }
        await Promise.all(running);
        await nextTurn();
        expect(socket.corked).toBe(false);
        expect(writes.flat()).toEqual(plan.flatMap((step, i) => Array.from({ length: step.commands }, (_, c) => `c${i}.${c}`)));
      }),
      { numRuns: 300 },
    );
  });
});
