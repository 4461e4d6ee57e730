import { setFlagsFromString } from "node:v8";

/** The V8 options that ask for allocation-site pretenuring explicitly (V8 reads `-` and `_` alike). */
const KEEP_FLAGS = new Set(["--allocation-site-pretenuring", "--allocation_site_pretenuring"]);

let avoided = false;

/**
 * Turns off V8's allocation-site pretenuring for the whole process, unless
 * node was started with `--allocation-site-pretenuring`; runs once per process.
 *
 * V8 counts, at each young-generation collection, how many of the objects an
 * allocation site made since the last one are still alive; when nearly all
 * are, it has the site allocate in the old generation from then on (traced on
 * Node 20, it did not go back). On a Redis-tier server that happened within
 * the first second of sequential Gets, in every run traced: one collection
 * found a few hundred calls' objects of about a dozen sites alive, those
 * sites (grpc-js's and Node's per-call objects) were pretenured, every call's
 * objects then went to the old generation and held the young objects they
 * point to past the next collection, and the server ran a full mark-compact
 * about once a second. A memory-only server, and an echo server doing the
 * same Redis GET, never pretenured. A sequential Redis-tier Get cost about 100 µs of CPU instead of
 * 75 (bench/README.md, issue 13). Per-call objects die young, which is what
 * the young generation is for; without pretenuring an object that does live
 * long is copied once more before it reaches the old generation.
 */
export function avoidPretenuring(execArgv: readonly string[] = process.execArgv): void {
  if (avoided || execArgv.some((arg) => KEEP_FLAGS.has(arg))) return;
  avoided = true;
  setFlagsFromString("--no-allocation-site-pretenuring");
}

/** Whether {@link avoidPretenuring} turned pretenuring off in this process (startServer runs it). */
export function pretenuringAvoided(): boolean {
  return avoided;
}
