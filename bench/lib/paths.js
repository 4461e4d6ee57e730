/**
 * Where things are: the repository root and the compiled project. The
 * harness benchmarks `dist/` of this checkout; BENCH_DIST=/other/dist points
 * it at another build (e.g. of an older commit, to compare), and then the
 * harness does not build.
 */
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const DIST = process.env.BENCH_DIST ? resolve(process.env.BENCH_DIST) : join(ROOT, "dist");

/** Imports a compiled module of the project, e.g. `importDist("core/codec.js")`. */
export function importDist(relative) {
  return import(pathToFileURL(join(DIST, relative)).href);
}
