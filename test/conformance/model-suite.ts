import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Status } from "../../client/index.js";
import { startDeployment, type ClientUnderTest, type Deployment, type DeploymentKind } from "../helpers/conformance-deployments.js";
import { readUntil, StalenessLog } from "../helpers/eventually.js";
import { keyPoolArb } from "../helpers/conformance-keys.js";
import { UnhandledRejections } from "../helpers/unhandled-rejections.js";
import { EXAMPLES } from "./examples.js";
import { finishFaultRun } from "./fault-run.js";
import { MAX_FAULTS_PER_RUN } from "./fault-timeline.js";
import { describeOp, opArbs, SUITE_NAMESPACES, type Op, type OpMix } from "./ops.js";
import { runOp, type RunContext } from "./run-op.js";
import { RunStats } from "./run-stats.js";
import { conformanceSettings, type ConformanceSettings } from "./settings.js";
import { newRunContext } from "./step.js";

/**
 * Touches k#0 to 60 s through client 1, then wraps it through client 0 with
 * eagerRefresh 0.5 (60 s left of 120: due, so the model says a refresh runs);
 * `release` (letting held invalidations through) runs at the end whatever happened.
 */
async function touchThenWrapEagerly(ctx: RunContext, release: () => void): Promise<void> {
  try {
    await runOp({ client: 1, ns: "", op: "touch", key: 0, ttl: 60_000 }, ctx);
    await runOp({ client: 0, ns: "", op: "wrap", key: 0, value: "refreshed", ttl: 120_000, grace: 30_000, eagerRefresh: 0.5 }, ctx);
  } finally {
    release();
  }
}

/** `deployment` whose instanceView records each view it returns in `views`, then calls `looked`. */
function recordingInstanceViews(deployment: Deployment, views: unknown[], looked: () => void): Deployment {
  return {
    ...deployment,
    instanceView: async (client, namespace, key) => {
      const view = await deployment.instanceView(client, namespace, key);
      views.push(view);
      looked();
      return view;
    },
  };
}

/** One random step, as fast-check's model-based testing wants it. */
class OpCommand implements fc.AsyncCommand<RunContext, null> {
  constructor(readonly op: Op) {}
  /** A fault step runs only in a run that may have faults, and at most MAX_FAULTS_PER_RUN times in it. */
  check(ctx: Readonly<RunContext>): boolean {
    return this.op.op !== "fault" || (ctx.faults !== undefined && ctx.faults.begun.length < MAX_FAULTS_PER_RUN);
  }
  async run(ctx: RunContext): Promise<void> {
    await runOp(this.op, ctx);
  }
  toString(): string {
    return describeOp(this.op);
  }
}

/** The command line that replays a failure (fast-check's seed, path and the commands' replayPath). */
function replayHint<T>(kind: DeploymentKind, mix: OpMix, details: fc.RunDetails<T>): string {
  const replayPath = /replayPath="([^"]*)"/.exec(fc.stringify(details.counterexample))?.[1];
  const env = [`CONFORMANCE_SEED=${details.seed}`, `CONFORMANCE_PATH=${JSON.stringify(details.counterexamplePath ?? "")}`];
  if (replayPath !== undefined) env.push(`CONFORMANCE_REPLAY_PATH=${JSON.stringify(replayPath)}`);
  return `Replay this failure: ${env.join(" ")} npx vitest run test/conformance/${kind}.conformance.test.ts -t ${JSON.stringify(MIX_TITLES[mix])}`;
}

/** Where the worst staleness after a fault happened, and the command line that runs that run again (its timing may differ). */
function worstFaultRunHint(kind: DeploymentKind, seed: number, replayedPath: string | undefined, stats: RunStats): string {
  const { worstMs, worstRun } = stats.afterFaults;
  if (worstRun === undefined) return `[conformance ${kind}] faults: seed ${seed}; no read waited after a fault`;
  const path = replayedPath ?? String(worstRun);
  return `[conformance ${kind}] faults: seed ${seed}; the worst staleness after a fault, ${worstMs} ms, was in run ${path}: CONFORMANCE_SEED=${seed} CONFORMANCE_PATH="${path}" npx vitest run test/conformance/${kind}.conformance.test.ts -t ${JSON.stringify(MIX_TITLES.faults)}`;
}

/** The name of each random property's test (a replay selects it with -t). */
const MIX_TITLES: Record<OpMix, string> = {
  all: "random command sequences: every operation",
  grace: "random command sequences: wrap with grace, values going stale, and what each operation does with them",
  tags: "random command sequences: tagged writes, tag invalidations, and what reads see after them",
  faults: "random command sequences with faults: Redis paused, killed and restarted, an instance's pub/sub connection cut",
};

/** The mixes a deployment runs: with faults where it can suffer them. */
function mixesOf(deployment: DeploymentKind): OpMix[] {
  return deployment === "two-instances" ? ["all", "grace", "tags", "faults"] : ["all", "grace", "tags"];
}

/** Per-test counters printed after each deployment. */
interface Tally {
  runs: number;
  steps: number;
  /** Wall time of the random runs, shrinking included. */
  ms: number;
}

async function checkRandomRuns(mix: OpMix, deployment: Deployment, settings: ConformanceSettings, stats: RunStats, tally: Tally): Promise<void> {
  const commands = fc.commands([fc.oneof(...opArbs(mix, deployment.eventual)).map((op) => new OpCommand(op))], {
    maxCommands: settings.maxCommands,
    size: "max",
    ...(settings.replayPath !== undefined && { replayPath: settings.replayPath }),
  });
  // Shrinking re-runs real calls; past the budget, remaining candidates pass at once and the smallest failure so far is reported.
  let shrinkDeadline = Infinity;
  // A replay (CONFORMANCE_PATH) whose run passes this time would go on through fast-check's remaining shrink
  // candidates, which numRuns does not bound; with faults each costs seconds. Once it passed, the rest pass at once.
  let replayPassed = false;
  const faults = mix === "faults";
  // Faults break connections while commands are in flight: where a rejection goes unhandled, the server process would crash.
  const rejections = faults ? new UnhandledRejections() : undefined;
  // fast-check's path of run i (before any shrinking) is "i": with the seed, it replays that run.
  let run = -1;
  const property = fc.asyncProperty(keyPoolArb(deployment.maxKeyBytes), commands, async (pool, steps) => {
    if (Date.now() > shrinkDeadline || replayPassed) return;
    tally.runs++;
    stats.afterFaults.currentRun = ++run;
    if (faults) stats.faultRuns++;
    await deployment.reset(SUITE_NAMESPACES);
    const ctx = newRunContext(deployment, pool.keys, stats, faults);
    const seen = rejections?.count ?? 0;
    try {
      await fc.asyncModelRun(() => ({ model: ctx, real: null }), steps);
      if (faults) await finishFaultRun(ctx);
      rejections?.assertNoneSince(seen);
      if (settings.path !== undefined && shrinkDeadline === Infinity) replayPassed = true; // no failure yet: the replayed run itself passed
    } catch (err) {
      if (shrinkDeadline === Infinity) shrinkDeadline = Date.now() + settings.shrinkBudgetMs;
      throw err;
    } finally {
      tally.steps += [...steps].length;
      await ctx.faults?.healed().catch(() => {}); // the next run starts with no fault on
    }
  });
  rejections?.install();
  const details = await fc
    .check(property, {
      numRuns: faults ? settings.faultRuns : settings.runs,
      ...(settings.seed !== undefined && { seed: settings.seed }),
      ...(settings.path !== undefined && { path: settings.path }),
    })
    .finally(() => rejections?.uninstall());
  if (faults && details.seed !== undefined) console.log(worstFaultRunHint(deployment.kind, details.seed, settings.path, stats));
  if (replayPassed) console.warn(`[conformance ${deployment.kind}] the replayed run passed this time; a failure that depends on real time (faults, lags) may need a few replays`);
  if (details.failed) {
    const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(`${fc.defaultReportMessage(details)}\n\n${cause}\n\n${replayHint(deployment.kind, mix, details)}`);
  }
}

/**
 * Checks one deployment against the reference model: random command
 * sequences over adversarial keys and values on a fake clock, fixed example
 * sequences, and the cross-client lease.
 */
export function describeConformance(kind: DeploymentKind): void {
  const settings = conformanceSettings();

  describe(`${kind}: conforms to the reference model`, () => {
    let deployment: Deployment;
    const stats = new RunStats();
    const tally: Tally = { runs: 0, steps: 0, ms: 0 };

    beforeAll(async () => {
      deployment = await startDeployment(kind);
    });
    afterAll(async () => {
      await deployment?.dispose();
      const lines = [
        `[conformance ${kind}] ${tally.runs} runs (${tally.steps} steps) in ${(tally.ms / 1000).toFixed(1)} s`,
        deployment?.eventual ? `coherence: ${stats.staleness.summary()}` : "reads exact (no re-reads)",
        ...(stats.faultRuns > 0 ? [stats.faultSummary()] : []),
        "steps by the state of their (first) key:",
        ...stats.coverage().map((line) => `  ${line}`),
      ];
      console.log(lines.join("\n"));
    });

    for (const mix of mixesOf(kind)) {
      const runs = mix === "faults" ? settings.faultRuns : settings.runs;
      const perRunMs = mix === "faults" ? 30_000 : 5_000;
      it(
        `${MIX_TITLES[mix]} (${runs} runs of up to ${settings.maxCommands} steps)`,
        async () => {
          const started = Date.now();
          try {
            await checkRandomRuns(mix, deployment, settings, stats, tally);
          } finally {
            tally.ms += Date.now() - started;
          }
        },
        runs * perRunMs + settings.shrinkBudgetMs + 60_000,
      );
    }

    for (const example of EXAMPLES) {
      it(`example: ${example.name}`, async () => {
        await deployment.reset(SUITE_NAMESPACES);
        const ctx = newRunContext(deployment, example.keys, new RunStats(), false);
        for (const op of example.ops) await runOp(op, ctx);
      });
    }

    if (kind === "two-instances") {
      it('example: local tiers serve copies (tier "client") in every namespace, "" included, and still after a call named an invalid namespace', async () => {
        await deployment.reset(SUITE_NAMESPACES);
        const [c0, c1] = deployment.clients;
        const cases: (readonly [ClientUnderTest, string | undefined, string])[] = [
          [c0!, undefined, "named by omission"],
          [c0!, "alpha", "alpha"],
          [c1!, undefined, 'client namespace ""'],
          [c0!, "", '""'],
        ];
        const problems: string[] = [];
        const servesLocally = async (who: ClientUnderTest, namespace: string | undefined, key: string, what: string) => {
          const options = namespace === undefined ? {} : { namespace };
          await who.client.set(key, what, options);
          const read = await readUntil(`local copy of ${key}`, () => who.client.getEntry(key, options), (entry) => entry?.tier === "client", new StalenessLog());
          if (read.value?.value !== what) problems.push(`${who.label}, ${what}: read ${JSON.stringify(read.value?.value)}`);
          if (!read.matched) problems.push(`${who.label}, ${what}: no local copy served within ${read.waitedMs} ms (last read from tier ${read.value?.tier})`);
        };
        for (const [who, namespace, what] of cases) await servesLocally(who, namespace, `local-${what}`, what);
        await expect(c0!.client.get("local", { namespace: "-invalid" })).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
        await servesLocally(c0!, "alpha", "after", "alpha, after a call named an invalid namespace");
        expect(problems).toEqual([]);
      });
      it("example: before a wrap, the harness waits until the client's instance heard of a delete made through the other instance (a get misses the stale copy it still holds; wrap would return it)", async () => {
        await deployment.reset(SUITE_NAMESPACES);
        const hold = deployment.holdInvalidations!;
        let release = () => {};
        const views: unknown[] = [];
        // The steps' deployment: the first look at instance 1 before the wrap lets its held invalidations through.
        const observed = recordingInstanceViews(deployment, views, () => release());
        const ctx = newRunContext(observed, ["k"], new RunStats(), false);
        const c0 = { client: 0, ns: "" } as const;
        const staleView = { value: "", stale: true, freshRemainingMs: 0, expiresAt: deployment.clock.now() + 320_000 };
        await runOp({ ...c0, op: "wrap", key: 0, value: "", ttl: 120_000, grace: 200_000 }, ctx);
        await runOp({ op: "advance", ms: 150_000 }, ctx);
        // Instance 1 holds the stale value in its memory tier (a read through promotes it there).
        expect(await deployment.instanceView(0, "", "k")).toEqual(staleView);
        release = hold(0);
        views.length = 0;
        try {
          await runOp({ client: 1, ns: "", op: "delete", key: 0 }, ctx);
          await runOp({ ...c0, op: "wrap", key: 0, value: "loaded", ttl: 60_000, grace: 0 }, ctx);
        } finally {
          release();
        }
        expect(views[0]).toEqual(staleView);
      });
      it("example: before a wrap with eagerRefresh, the harness waits until the client's copy has the time left that a touch through the other instance set (only the TTL changed, so a get cannot tell)", async () => {
        await deployment.reset(SUITE_NAMESPACES);
        let release = () => {};
        const looks: ({ value: unknown; ttlRemainingMs: number } | undefined)[] = [];
        // The steps' deployment: a second getEntry through client 0 (the harness waiting, as the first showed the old time) lets the held invalidations through.
        const [c0client, c1client] = deployment.clients;
        const watched = new Proxy(c0client!.client, {
          get(target, property) {
            if (property === "getEntry") {
              return async (...args: Parameters<typeof target.getEntry>) => {
                const entry = await target.getEntry(...args);
                looks.push(entry && { value: entry.value, ttlRemainingMs: entry.ttlRemainingMs });
                if (looks.length >= 2) release();
                return entry;
              };
            }
            const value: unknown = Reflect.get(target, property, target);
            return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        });
        const observed: Deployment = { ...deployment, clients: [{ ...c0client!, client: watched }, c1client!] };
        const ctx = newRunContext(observed, ["k"], new RunStats(), false);
        const c0 = { client: 0, ns: "" } as const;
        await runOp({ ...c0, op: "wrap", key: 0, value: "", ttl: 120_000, grace: 60_000 }, ctx);
        await runOp({ op: "settle" }, ctx);
        release = deployment.holdInvalidations!(0);
        looks.length = 0;
        await touchThenWrapEagerly(ctx, () => release());
        // The client's copy still said 120 s when the harness first looked: the touch had not reached it.
        expect(looks[0]).toEqual({ value: "", ttlRemainingMs: 120_000 });
      });
      it("example: before a wrap with eagerRefresh, the harness waits until the client's instance holds the expiry a touch through the other instance set (it ended the grace; the fresh time stayed)", async () => {
        await deployment.reset(SUITE_NAMESPACES);
        const hold = deployment.holdInvalidations!;
        let release = () => {};
        const views: unknown[] = [];
        // A second look (the harness waiting, as the first showed the old expiry) lets the held invalidations through.
        const observed = recordingInstanceViews(deployment, views, () => views.length >= 2 && release());
        const ctx = newRunContext(observed, ["k"], new RunStats(), false);
        const c0 = { client: 0, ns: "" } as const;
        await runOp({ ...c0, op: "wrap", key: 0, value: "", ttl: 60_000, grace: 30_000 }, ctx);
        await runOp({ op: "settle" }, ctx);
        const withGrace = { value: "", stale: false, freshRemainingMs: 60_000, expiresAt: deployment.clock.now() + 90_000 };
        expect(await deployment.instanceView(0, "", "k")).toEqual(withGrace);
        release = hold(0);
        views.length = 0;
        await touchThenWrapEagerly(ctx, () => release());
        // Instance 1 still held the copy with its grace when the harness first looked.
        expect(views[0]).toEqual(withGrace);
      });
    }

    it("example: a second client's wrap waits for the lease holder's value instead of running its own loader", async () => {
      await deployment.reset(["alpha"]);
      const [a, b] = deployment.sameInstanceClients();
      const options = { namespace: "alpha", ttl: 60_000 };
      let releaseLoader = () => {};
      const gate = new Promise<void>((resolve) => (releaseLoader = resolve));
      let holding = () => {};
      const leaseTaken = new Promise<void>((resolve) => (holding = resolve));
      const calls = { a: 0, b: 0 };
      const first = a.wrap(
        "leased",
        async () => {
          calls.a++;
          holding();
          await gate;
          return "from a";
        },
        options,
      );
      await leaseTaken; // a's loader runs, so a holds the lease
      const second = b.wrap("leased", () => (calls.b++, "from b"), options);
      // Give b's GetOrLease time to reach the server while a holds the lease (the outcome must not depend on it).
      await new Promise((resolve) => setTimeout(resolve, 200));
      releaseLoader();
      expect(await first).toBe("from a");
      expect(await second).toBe("from a");
      expect(calls).toEqual({ a: 1, b: 0 });
      expect(await b.get("leased", { namespace: "alpha" })).toBe("from a");
      a.close();
      b.close();
    });
  });
}
