import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValueCodec } from "../../core/codec.js";
import { TierUnavailableError } from "../../core/errors.js";
import type { Logger } from "../../server/logger.js";
import { RedisTier, type BreakerState, type RedisTierCommonOptions } from "../../server/tiers/redis-tier.js";
import { freePort, startTestRedis, type TestRedis } from "../helpers/redis-server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

/*
 * Faults against real redis-server processes (STYLE.md item 9): SIGKILL,
 * SIGSTOP, a slow or broken network (tcp-proxy). Bounds are deliberately
 * generous (slow, noisy CI machines); nothing here asserts speed, only that
 * no call hangs, errors have the right class, and the tier recovers.
 */

const codec = new ValueCodec();
const envelope = (value: string) => codec.encode(new TextEncoder().encode(value), "text/plain", 0);
const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(codec.decode(bytes).value));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every 20 ms until true or `withinMs` passed; returns whether it became true. */
async function eventually(condition: () => boolean | Promise<boolean>, withinMs: number): Promise<boolean> {
  const end = Date.now() + withinMs;
  while (Date.now() < end) {
    if (await condition()) return true;
    await sleep(20);
  }
  return condition();
}

/** A logger that keeps what it is told. */
function recordingLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (message: string) => void lines.push({ level, message });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/** The error's class and reason, e.g. "TierUnavailableError: circuit breaker open". */
function errorClass(err: unknown): string {
  if (!(err instanceof Error)) return `non-error ${String(err)}`;
  const reason = err.message.replace(/^redis \w+ failed: /, "").replace(/after \d+ ms/, "after N ms");
  return `${err.constructor.name}: ${reason}`;
}

let unhandled = 0;
const onUnhandled = () => void unhandled++;
beforeAll(() => void process.on("unhandledRejection", onUnhandled));
afterAll(() => void process.off("unhandledRejection", onUnhandled));

describe("RedisTier under faults", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function tier(url: string, options: RedisTierCommonOptions = {}): Promise<RedisTier> {
    const t = await RedisTier.connect({ url, ...options });
    cleanups.push(() => t.close());
    return t;
  }

  it("Redis SIGKILLed under load: calls settle fast as unavailable, the breaker opens; restarted: it closes and acknowledged writes read back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tiercache-kill-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    const durable = { port, dir, args: ["--appendonly", "yes", "--appendfsync", "always"] };
    let redis = await startTestRedis(durable);
    cleanups.push(() => redis.stop(true));

    const logger = recordingLogger();
    const transitions: { state: BreakerState; at: number }[] = [];
    const t = await tier(redis.url, { logger, breakerResetTimeoutMs: 500, onBreakerStateChange: (state) => transitions.push({ state, at: Date.now() }) });

    const acked = new Map<string, string>();
    const outage: { started: number; ms: number }[] = [];
    const errors = new Map<string, number>();
    let killAt = Infinity;
    let restartAt = Infinity;
    let running = true;
    const worker = async (w: number) => {
      for (let i = 0; running && i < 100_000; i++) {
        const key = `w${w}-${i}`;
        const started = Date.now();
        try {
          if (i % 2 === 0) {
            await t.set("kill", { key, envelope: envelope(key), expiresAt: 0 });
            acked.set(key, key);
          } else {
            await t.get("kill", `w${w}-${i - 1}`);
          }
        } catch (err) {
          errors.set(errorClass(err), (errors.get(errorClass(err)) ?? 0) + 1);
        }
        if (started >= killAt && started < restartAt) outage.push({ started, ms: Date.now() - started });
        await sleep(5);
      }
    };
    const workers = [0, 1, 2, 3].map(worker);

    await eventually(() => acked.size >= 40, 10_000);
    killAt = Date.now();
    await redis.stop(true); // SIGKILL
    expect(await eventually(() => t.breakerState === "open", 10_000)).toBe(true);
    const openedAfterMs = transitions.find((s) => s.state === "open")!.at - killAt;
    await sleep(1_000); // a steady outage, with the breaker cycling open / half-open

    restartAt = Date.now();
    redis = await startTestRedis(durable);
    expect(await eventually(() => t.breakerState === "closed", 15_000)).toBe(true);
    const closedAfterMs = transitions.findLast((s) => s.state === "closed")!.at - restartAt;
    running = false;
    await Promise.all(workers);

    const latencies = outage.map((o) => o.ms);
    const summary = {
      killToBreakerOpenMs: openedAfterMs,
      restartToBreakerClosedMs: closedAfterMs,
      callsDuringOutage: latencies.length,
      outageLatencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies) },
      errors: Object.fromEntries(errors),
      stats: t.stats(),
      acknowledgedWrites: acked.size,
    };
    console.log(`redis kill fault summary: ${JSON.stringify(summary)}`);

    expect(latencies.length).toBeGreaterThan(10);
    // commandTimeout × (retries + 1) + backoff ≈ 1.9 s in the worst case; a kill fails faster
    expect(summary.outageLatencyMs.max).toBeLessThan(3_000);
    for (const kind of errors.keys()) expect(kind).toMatch(/^TierUnavailableError: /);
    expect(summary.stats.breakerOpens).toBeGreaterThanOrEqual(1);
    expect(summary.stats.shortCircuited).toBeGreaterThan(0);
    expect(logger.lines.some((l) => l.level === "warn" && l.message.includes("breaker opened"))).toBe(true);
    expect(logger.lines.some((l) => l.level === "info" && l.message.includes("breaker closed"))).toBe(true);

    const keys = [...acked.keys()];
    const found: (Uint8Array | undefined)[] = [];
    for (let i = 0; i < keys.length; i += 500) found.push(...(await t.getMany("kill", keys.slice(i, i + 500))));
    const lost = keys.filter((key, i) => text(found[i]) !== acked.get(key));
    expect(lost).toEqual([]);
  });

  it("a breaker that opened while Redis was down closes as soon as the connection is ready again, not after its reset timeout", async () => {
    const port = await freePort();
    let redis = await startTestRedis({ port, args: [] });
    cleanups.push(() => redis.stop(true));
    const transitions: BreakerState[] = [];
    const t = await tier(redis.url, { breakerResetTimeoutMs: 60_000, onBreakerStateChange: (state) => transitions.push(state) });
    await t.set("back", { key: "k", envelope: envelope("v"), expiresAt: 0 });

    await redis.stop(true); // SIGKILL
    expect(await eventually(() => t.get("back", "k").then(() => false, () => t.breakerState === "open"), 10_000)).toBe(true);
    redis = await startTestRedis({ port, args: [] });
    // The tier reconnects within its capped backoff (about 1 s); the breaker's 60 s reset timeout must not hold it shut.
    expect(await eventually(() => t.get("back", "k").then(() => true, () => false), 10_000)).toBe(true);
    expect(t.breakerState).toBe("closed");
    expect(transitions).toEqual(["open", "closed"]);
  });

  describe("a paused Redis (SIGSTOP)", () => {
    let redis: TestRedis;
    beforeAll(async () => {
      redis = await startTestRedis({ args: [] });
      cleanups.push(() => redis.stop(true));
    });

    it("every call finishes within its time budget, and the tier recovers on SIGCONT", async () => {
      const t = await tier(redis.url, { commandTimeoutMs: 300, breakerResetTimeoutMs: 300 });
      await t.set("pause", { key: "k", envelope: envelope("v"), expiresAt: 0 });
      redis.pause();
      try {
        const started = Date.now();
        const results = await Promise.allSettled([
          t.get("pause", "k"),
          t.getMany("pause", ["k", "j"]),
          t.set("pause", { key: "j", envelope: envelope("w"), expiresAt: 0 }),
          t.delete("pause", "x"),
          t.get("pause", "k", { deadline: Date.now() + 150 }),
        ]);
        const elapsed = Date.now() - started;
        for (const r of results) {
          expect(r.status).toBe("rejected");
          expect((r as PromiseRejectedResult).reason).toBeInstanceOf(TierUnavailableError);
        }
        // 3 attempts × 300 ms + 2 backoffs ≤ 200 ms = 1.3 s at most, plus scheduling
        expect(elapsed).toBeLessThan(3_000);
        expect(t.stats().timeouts).toBeGreaterThan(0);
      } finally {
        redis.resume();
      }
      expect(await eventually(() => t.get("pause", "k").then((v) => text(v) === "v", () => false), 10_000)).toBe(true);
    });

    it("a call with a 50 ms deadline gives up at the deadline and does not retry", async () => {
      const t = await tier(redis.url, { breakerVolumeThreshold: 1_000 });
      await t.set("deadline", { key: "k", envelope: envelope("v"), expiresAt: 0 });
      redis.pause();
      try {
        const before = t.stats();
        const started = Date.now();
        const err = await t.get("deadline", "k", { deadline: Date.now() + 50 }).catch((e: unknown) => e);
        const elapsed = Date.now() - started;
        expect(err).toBeInstanceOf(TierUnavailableError);
        expect(elapsed).toBeGreaterThanOrEqual(40);
        expect(elapsed).toBeLessThan(1_000); // ~50 ms, generously
        const after = t.stats();
        expect(after.retries).toBe(before.retries);
        expect(after.timeouts).toBe(before.timeouts + 1);

        const passed = await t.get("deadline", "k", { deadline: Date.now() - 1 }).catch((e: unknown) => e);
        expect(passed).toBeInstanceOf(TierUnavailableError);
        expect(t.stats().timeouts).toBe(after.timeouts); // no attempt at all
      } finally {
        redis.resume();
      }
    });

    it("an aborted signal stops waiting and stops retrying", async () => {
      const t = await tier(redis.url, { commandTimeoutMs: 100, retries: 5, retryBaseMs: 50, retryMaxMs: 100, breakerVolumeThreshold: 1_000 });
      await t.set("abort", { key: "k", envelope: envelope("v"), expiresAt: 0 });
      redis.pause();
      try {
        const controller = new AbortController();
        const started = Date.now();
        setTimeout(() => controller.abort(new Error("client went away")), 150);
        const err = await t.get("abort", "k", { signal: controller.signal }).catch((e: unknown) => e);
        const elapsed = Date.now() - started;
        expect(err).toBeInstanceOf(TierUnavailableError);
        expect((err as Error).message).toMatch(/cancelled/);
        expect(elapsed).toBeLessThan(1_000); // five retries would take ≥ 600 ms + backoff
        const retries = t.stats().retries;
        expect(retries).toBeLessThanOrEqual(2);
        await sleep(500);
        expect(t.stats().retries).toBe(retries); // nothing kept retrying behind the caller

        const aborted = AbortSignal.abort();
        const before = t.stats();
        await expect(t.get("abort", "k", { signal: aborted })).rejects.toBeInstanceOf(TierUnavailableError);
        expect(t.stats().timeouts).toBe(before.timeouts);
      } finally {
        redis.resume();
      }
    });
  });

  describe("a faulty network (tcp-proxy)", () => {
    let redis: TestRedis;
    let proxy: TcpProxy;
    beforeAll(async () => {
      redis = await startTestRedis({ args: [] });
      cleanups.push(() => redis.stop(true));
      proxy = await startTcpProxy(redis);
      cleanups.push(() => proxy.close());
    });

    it("latency above the command timeout: timeouts surface as unavailable; without it, the tier recovers", async () => {
      const t = await tier(`redis://${proxy.host}:${proxy.port}`, { commandTimeoutMs: 200, breakerResetTimeoutMs: 300 });
      await t.set("slow", { key: "k", envelope: envelope("v"), expiresAt: 0 });
      proxy.latencyMs = 400;
      try {
        const results = await Promise.allSettled(Array.from({ length: 12 }, () => t.get("slow", "k")));
        for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(TierUnavailableError);
        expect(t.stats().timeouts).toBeGreaterThan(0);
        expect(t.stats().breakerOpens).toBeGreaterThanOrEqual(1);
      } finally {
        proxy.latencyMs = 0;
      }
      expect(await eventually(() => t.get("slow", "k").then((v) => text(v) === "v", () => false), 10_000)).toBe(true);
      expect(await eventually(() => t.breakerState === "closed", 5_000)).toBe(true);
    });

    it("held data (pause), connection resets and refused connections: unavailable, then recovery", async () => {
      const t = await tier(`redis://${proxy.host}:${proxy.port}`, { commandTimeoutMs: 200, breakerVolumeThreshold: 1_000 });
      await t.set("net", { key: "k", envelope: envelope("v"), expiresAt: 0 });
      const readsBack = () => t.get("net", "k").then((v) => text(v) === "v", () => false);

      proxy.pause();
      await expect(t.get("net", "k")).rejects.toBeInstanceOf(TierUnavailableError);
      proxy.resume();
      expect(await eventually(readsBack, 10_000)).toBe(true);

      proxy.reset();
      await proxy.refuse();
      await expect(t.get("net", "k")).rejects.toBeInstanceOf(TierUnavailableError);
      await proxy.accept();
      expect(await eventually(readsBack, 10_000)).toBe(true);

      proxy.drop();
      expect(await eventually(readsBack, 10_000)).toBe(true);
    });
  });

  it("no unhandled promise rejections happened during the faults", () => {
    expect(unhandled).toBe(0);
  });
});
