/**
 * The public cache traces of ../shared/traces (see its README): where they
 * are, how to decompress them (the `xz` command, into a temporary folder
 * that is removed afterwards; nothing decompressed is ever written into
 * the repository), how to read each format, and the reference hit ratios
 * published or computed for them (reference_hit_ratios.csv).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./paths.js";

/** The shared traces folder, beside the repository (TIERCACHE_TRACES overrides it). */
export const TRACES_DIR = process.env.TIERCACHE_TRACES ?? join(ROOT, "../shared/traces");

/** Whether the traces and their reference table are present and `xz` can decompress them. */
export function tracesAvailable() {
  if (!existsSync(join(TRACES_DIR, "reference_hit_ratios.csv"))) return false;
  return spawnSync("xz", ["--version"], { encoding: "utf8" }).status === 0;
}

/**
 * Decompresses every trace into a new temporary folder: OLTP.lis.xz to
 * OLTP.lis, lirs.tar.xz to lirs/*.trace. Returns the folder and a
 * function that removes it.
 */
export function decompressTraces() {
  const dir = mkdtempSync(join(tmpdir(), "tiercache-traces-"));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    for (const file of readdirSync(TRACES_DIR)) {
      const source = join(TRACES_DIR, file);
      if (file.endsWith(".tar.xz")) {
        run("tar", ["-xJf", source, "-C", dir]);
      } else if (file.endsWith(".xz")) {
        const out = spawnSync("xz", ["-dc", source], { maxBuffer: 1 << 30 });
        if (out.status !== 0) throw new Error(`xz -dc ${file}: ${out.stderr}`);
        writeFileSync(join(dir, file.slice(0, -3)), out.stdout);
      }
    }
  } catch (err) {
    remove();
    throw err;
  }
  return { dir, remove };
}

function run(command, args) {
  const out = spawnSync(command, args, { encoding: "utf8" });
  if (out.status !== 0) throw new Error(`${command} ${args.join(" ")}: ${out.stderr || out.error}`);
}

/**
 * Reads a trace file as request key ids: `{ keys, requests }`, where
 * `keys[id]` is the key string (the block or item number) and `requests`
 * an Int32Array of ids in request order.
 *
 * Formats: `*.lis` (ARC traces): `start_block n_blocks ignored request_no`
 * per line, standing for n_blocks consecutive keys; `*.trace` (LIRS
 * traces): one integer key per line, blank lines and `*` skipped, CRLF
 * accepted.
 */
export function readTrace(path) {
  const text = readFileSync(path, "latin1");
  const arc = path.endsWith(".lis");
  const ids = new Map();
  const keys = [];
  const requests = [];
  const request = (key) => {
    let id = ids.get(key);
    if (id === undefined) {
      id = keys.length;
      ids.set(key, id);
      keys.push(String(key));
    }
    requests.push(id);
  };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line === "*") continue;
    if (arc) {
      const [start, count] = line.split(/\s+/, 2).map(Number);
      for (let i = 0; i < count; i++) request(start + i);
    } else {
      request(Number(line));
    }
  }
  return { keys, requests: Int32Array.from(requests) };
}

/**
 * reference_hit_ratios.csv as `Map<"trace@entries", { [policy]: { pct, kind, source } }>`,
 * in file order (trace as written there, e.g. "OLTP.lis", "lirs/gli.trace").
 */
export function readReferences() {
  const lines = readFileSync(join(TRACES_DIR, "reference_hit_ratios.csv"), "utf8").trim().split("\n");
  const header = lines[0].split(",");
  const column = (name) => header.indexOf(name);
  const out = new Map();
  for (const line of lines.slice(1)) {
    const cells = line.split(",");
    const trace = cells[column("trace")];
    const size = Number(cells[column("cache_size")]);
    const key = `${trace}@${size}`;
    if (!out.has(key)) out.set(key, { trace, size, policies: {} });
    const policies = out.get(key).policies;
    const policy = cells[column("policy")];
    if (policies[policy]?.kind === "published") continue; // a published figure wins over a computed one
    policies[policy] = {
      pct: Number(cells[column("hit_ratio_pct")]),
      kind: cells[column("kind")],
      source: cells.slice(column("source")).join(","),
    };
  }
  return out;
}
