import { setFlagsFromString } from "node:v8";

/** The V8 option that asks for allocation-site pretenuring explicitly, as spelled with `--` and `-` (V8 reads `-` for `--`, `_` for `-`). */
const KEEP_FLAG = "--allocation-site-pretenuring";

let avoided = false;

/**
 * Turns off V8's allocation-site pretenuring for the whole process from now
 * on (a site V8 pretenured before stays so), unless node was started with
 * `--allocation-site-pretenuring`; runs once per process. That flag is the
 * way to keep V8's default. A program that embeds the server can also call
 * `v8.setFlagsFromString("--allocation-site-pretenuring")` right after
 * startServer, before any load: functions optimized while it was off go on
 * allocating without pretenuring.
 *
 * V8 counts, at each young-generation collection, how many of the objects an
 * allocation site made since the last one are still alive; when nearly all
 * are, it has the site allocate in the old generation from then on (traced
 * on Node 20, it did not go back). On a Redis-tier server that happened
 * within the first second of sequential Gets, in every run traced (and once
 * during a burst of 100 calls in flight): one collection found a few hundred
 * calls' objects of about a dozen sites alive, those sites (grpc-js's and
 * Node's per-call objects) were pretenured, every call's objects then went
 * to the old generation and held the young objects they point to past the
 * next collection, and the server ran a full mark-compact about once a
 * second. Under the same sequential Gets, neither a memory-only
 * server nor an echo server doing the same Redis GET pretenured. A
 * sequential Redis-tier Get took about 103 µs of server CPU instead of 81
 * (bench/compare-builds.js, bench/README.md, issue 13). Per-call objects die
 * young, which is what the young generation is for; without pretenuring an
 * object that does live long is copied once more before it reaches the old
 * generation.
 */
export function avoidPretenuring(execArgv: readonly string[] = process.execArgv): void {
  if (avoided || execArgv.some((arg) => arg.replace(/^--?/, "--").replaceAll("_", "-") === KEEP_FLAG)) return;
  avoided = true;
  setFlagsFromString("--no-allocation-site-pretenuring");
}

/** Whether {@link avoidPretenuring} turned pretenuring off in this process (startServer runs it). */
export function pretenuringAvoided(): boolean {
  return avoided;
}
