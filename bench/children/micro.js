/**
 * In-process micro-benchmarks, one per process (so every measured loop
 * sees one implementation only and stays monomorphic): memory-tier get /
 * set-with-eviction per policy, Map and lru-cache; ValueCodec vs raw zstd.
 *
 * config: { bench, policy?, capacity?, warmupMs, durationMs, seed }
 * result: { ops, elapsedMs, opsPerSec, ...extra }
 */
import { serveChild } from "../lib/child.js";
import { importDist } from "../lib/paths.js";
import { jsonDocument, mulberry32 } from "../lib/prng.js";

const MASK = (1 << 20) - 1;

/**
 * Calls `step(n)` (which does n ops) until `durationMs` of this process's
 * CPU time has passed; ops per CPU second. CPU time (user + system, GC
 * threads included) rather than wall time, so that other processes on a
 * shared machine slow the loop down without skewing the result.
 */
function timeLoop(step, durationMs, batch) {
  let ops = 0;
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  let cpuMs = 0;
  do {
    step(batch);
    ops += batch;
    const cpu = process.cpuUsage(cpu0);
    cpuMs = (cpu.user + cpu.system) / 1000;
  } while (cpuMs < durationMs);
  return { ops, elapsedMs: cpuMs, wallMs: performance.now() - wall0, opsPerSec: (ops / cpuMs) * 1000 };
}

async function memoryBench(config) {
  const [kind, impl] = config.bench.split(":");
  const capacity = config.capacity;
  const random = mulberry32(config.seed);
  const value = new Uint8Array(1024);
  const keys = Array.from({ length: capacity * 4 }, (_, i) => `key:${i}`);
  const order = Int32Array.from({ length: MASK + 1 }, () => Math.floor(random() * capacity));
  let cache;
  if (impl === "tier") {
    const { MemoryTier } = await importDist("core/memory-tier.js");
    cache = new MemoryTier({ maxEntries: capacity, policy: config.policy });
  } else if (impl === "lru-cache") {
    const { LRUCache } = await import("lru-cache");
    cache = new LRUCache({ max: capacity });
  } else {
    cache = new Map();
  }
  for (let i = 0; i < capacity; i++) cache.set(keys[i], value);

  let j = 0;
  let sink = 0;
  let next = capacity;
  const limit = keys.length;
  let step;
  if (kind === "get") {
    step = (n) => {
      for (let i = 0; i < n; i++) if (cache.get(keys[order[j++ & MASK]]) !== undefined) sink++;
    };
  } else if (impl === "map") {
    // A plain Map kept at the bound by deleting the key set `capacity` sets ago:
    // one insert plus one delete, the floor of any bounded map.
    step = (n) => {
      for (let i = 0; i < n; i++) {
        cache.set(keys[next], value);
        cache.delete(keys[next >= capacity ? next - capacity : next - capacity + limit]);
        if (++next === limit) next = 0;
      }
    };
  } else {
    // Every key set is absent (the cycle is 4× the capacity), so every set evicts (or, for TinyLFU, may be refused).
    step = (n) => {
      for (let i = 0; i < n; i++) {
        cache.set(keys[next], value);
        if (++next === limit) next = 0;
      }
    };
  }
  timeLoop(step, config.warmupMs, 10_000);
  const result = timeLoop(step, config.durationMs, 10_000);
  return { ...result, sink, size: cache.size };
}

/**
 * Loop bodies compiled with `new Function`, one fresh function per cache:
 * each gets its own type feedback, so every loop stays monomorphic even
 * with several caches in one process.
 */
const LOOPS = {
  get: `let j = 0, sink = 0;
    return function step(n) {
      for (let i = 0; i < n; i++) if (cache.get(keys[order[j++ & MASK]]) !== undefined) sink++;
      return sink;
    };`,
  set: `let next = capacity; const limit = keys.length;
    return function step(n) {
      for (let i = 0; i < n; i++) {
        cache.set(keys[next], value);
        if (++next === limit) next = 0;
      }
    };`,
  // A plain Map kept at the bound by deleting the key set \`capacity\` sets ago: the floor of any bounded map.
  "set-map": `let next = capacity; const limit = keys.length;
    return function step(n) {
      for (let i = 0; i < n; i++) {
        cache.set(keys[next], value);
        cache.delete(keys[next >= capacity ? next - capacity : next - capacity + limit]);
        if (++next === limit) next = 0;
      }
    };`,
};

function compileLoop(kind, env) {
  return new Function("cache", "keys", "order", "value", "capacity", "MASK", LOOPS[kind])(env.cache, env.keys, env.order, env.value, env.capacity, MASK);
}

/**
 * One policy's MemoryTier against Map and lru-cache, get hit and
 * set-with-eviction, all in one process in interleaved slices (so drifts of
 * the machine hit subject and baselines alike). One policy per process:
 * MemoryTier's call into its policy stays monomorphic, as in a server
 * that uses one policy.
 */
async function memoryInterleaved({ policy, capacity, warmupMs, sliceMs, slices, seed }) {
  const { MemoryTier } = await importDist("core/memory-tier.js");
  const { LRUCache } = await import("lru-cache");
  const random = mulberry32(seed);
  const value = new Uint8Array(1024);
  const keys = Array.from({ length: capacity * 4 }, (_, i) => `key:${i}`);
  const order = Int32Array.from({ length: MASK + 1 }, () => Math.floor(random() * capacity));
  const make = { tier: () => new MemoryTier({ maxEntries: capacity, policy }), "lru-cache": () => new LRUCache({ max: capacity }), map: () => new Map() };
  const jobs = [];
  for (const op of ["get", "set-evict"]) {
    for (const impl of ["tier", "lru-cache", "map"]) {
      const cache = make[impl]();
      for (let i = 0; i < capacity; i++) cache.set(keys[i], value);
      const kind = op === "get" ? "get" : impl === "map" ? "set-map" : "set";
      jobs.push({ id: `${op}:${impl}`, step: compileLoop(kind, { cache, keys, order, value, capacity }), ops: 0, cpuMs: 0 });
    }
  }
  for (const job of jobs) timeLoop(job.step, warmupMs, 10_000);
  for (let s = 0; s < slices; s++) {
    for (const job of s % 2 === 0 ? jobs : [...jobs].reverse()) {
      // Start each slice with an empty young generation, so one loop's garbage is not collected on another's time.
      globalThis.gc?.({ type: "minor" });
      const r = timeLoop(job.step, sliceMs, 10_000);
      job.ops += r.ops;
      job.cpuMs += r.elapsedMs;
    }
  }
  return Object.fromEntries(jobs.map((j) => [j.id, (j.ops / j.cpuMs) * 1000]));
}

async function prepareCodec(config) {
  const { ValueCodec } = await importDist("core/codec.js");
  const { Compressor, Decompressor } = await import("zstd-napi");
  const random = mulberry32(config.seed);
  const big = jsonDocument(16 * 1024, random);
  const small = jsonDocument(512, random);
  const codec = new ValueCodec();
  const compressor = new Compressor();
  compressor.setParameters({ compressionLevel: 1 });
  const decompressor = new Decompressor();
  const contentType = "application/json";
  let sink = 0;
  let payloadBytes;
  let step;
  let extra = {};
  switch (config.bench) {
    case "codec-encode-16k":
      payloadBytes = big.byteLength;
      step = (n) => {
        for (let i = 0; i < n; i++) sink += codec.encode(big, contentType, 0).byteLength;
      };
      extra.storedBytes = codec.encode(big, contentType, 0).byteLength;
      break;
    case "zstd-compress-16k":
      payloadBytes = big.byteLength;
      step = (n) => {
        for (let i = 0; i < n; i++) sink += compressor.compress(big).byteLength;
      };
      extra.storedBytes = compressor.compress(big).byteLength;
      break;
    case "codec-decode-16k": {
      payloadBytes = big.byteLength;
      const envelope = codec.encode(big, contentType, 0);
      if (!Buffer.from(codec.decode(envelope).value).equals(big)) throw new Error("codec round trip failed");
      step = (n) => {
        for (let i = 0; i < n; i++) sink += codec.decode(envelope).value.byteLength;
      };
      break;
    }
    case "zstd-decompress-16k": {
      payloadBytes = big.byteLength;
      const frame = compressor.compress(big);
      step = (n) => {
        for (let i = 0; i < n; i++) sink += decompressor.decompress(frame).byteLength;
      };
      break;
    }
    case "codec-encode-512":
      payloadBytes = small.byteLength;
      step = (n) => {
        for (let i = 0; i < n; i++) sink += codec.encode(small, contentType, 0).byteLength;
      };
      break;
    case "codec-decode-512": {
      payloadBytes = small.byteLength;
      const envelope = codec.encode(small, contentType, 0);
      step = (n) => {
        for (let i = 0; i < n; i++) sink += codec.decode(envelope).value.byteLength;
      };
      break;
    }
    case "envelope-build-512": {
      // The least any envelope of it costs: one allocation, from the slab encode carves from, and two copies (the codec's own header, then the value).
      payloadBytes = small.byteLength;
      const envelope = codec.encode(small, contentType, 0);
      const header = Buffer.from(envelope.subarray(0, envelope.byteLength - small.byteLength));
      const { BufferSlab } = await importDist("core/buffer-slab.js");
      const slab = new BufferSlab();
      step = (n) => {
        for (let i = 0; i < n; i++) {
          const copy = slab.take(header.byteLength + small.byteLength);
          copy.set(header);
          copy.set(small, header.byteLength);
          sink += copy.byteLength;
        }
      };
      break;
    }
    case "copy-512":
      // What storing a value costs at the very least: one allocation and one copy.
      payloadBytes = small.byteLength;
      step = (n) => {
        for (let i = 0; i < n; i++) {
          const copy = Buffer.allocUnsafe(small.byteLength);
          copy.set(small);
          sink += copy.byteLength;
        }
      };
      break;
    default:
      throw new Error(`unknown codec bench ${config.bench}`);
  }
  return { step, payloadBytes, batch: payloadBytes > 4096 ? 200 : 5000, extra, sink: () => sink };
}

async function codecBench(config) {
  const { step, payloadBytes, batch, extra, sink } = await prepareCodec(config);
  timeLoop(step, config.warmupMs, batch);
  const result = timeLoop(step, config.durationMs, batch);
  return { ...result, mbPerSec: (result.opsPerSec * payloadBytes) / 1e6, payloadBytes, sink: sink(), ...extra };
}

/**
 * Several codec benchmarks in one process, in interleaved slices (A B C …
 * then … C B A), so that a drift of the machine hits them all alike. Each
 * benchmark keeps its own loop function, so loops stay monomorphic.
 */
async function codecInterleaved({ benches, warmupMs, sliceMs, slices, seed }) {
  const prepared = [];
  for (const bench of benches) prepared.push({ bench, ...(await prepareCodec({ bench, seed })), ops: 0, cpuMs: 0 });
  for (const p of prepared) timeLoop(p.step, warmupMs, p.batch);
  for (let s = 0; s < slices; s++) {
    const order = s % 2 === 0 ? prepared : [...prepared].reverse();
    for (const p of order) {
      // A full GC before each slice: one benchmark's garbage (and external memory) is not collected on another's time.
      globalThis.gc?.();
      const r = timeLoop(p.step, sliceMs, p.batch);
      p.ops += r.ops;
      p.cpuMs += r.elapsedMs;
    }
  }
  return Object.fromEntries(
    prepared.map((p) => [p.bench, { opsPerSec: (p.ops / p.cpuMs) * 1000, mbPerSec: (p.ops / p.cpuMs) * 1000 * p.payloadBytes / 1e6, payloadBytes: p.payloadBytes, ...p.extra }]),
  );
}

await serveChild(async () => ({
  run: (config) => (config.bench.includes(":") ? memoryBench(config) : codecBench(config)),
  codecInterleaved,
  memoryInterleaved,
}));
