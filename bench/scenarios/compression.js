/**
 * (5) ValueCodec: encode/decode of a 16 KiB JSON document (compressed with
 * zstd level 1) against zstd-napi's own Compressor/Decompressor at the same
 * level, and a 512 B value (below the 1 KiB threshold, stored raw) against
 * a plain allocate-and-copy, and against encode's own allocation and
 * copies without its checks (a buffer carved from a 32 KiB slab, as encode
 * carves its envelopes, the codec's header, the value). Each round runs
 * each group of compared benchmarks in one fresh process, in interleaved
 * slices with a GC before each slice; MB/s of payload per CPU-second.
 */
import { startChild } from "../lib/child.js";
import { measured } from "../lib/report.js";
import { fmt, median } from "../lib/stats.js";

const NAME = "compression";
const BENCHES = ["codec-encode-16k", "zstd-compress-16k", "codec-decode-16k", "zstd-decompress-16k", "codec-encode-512", "codec-decode-512", "copy-512", "envelope-build-512"];
/** Benchmarks compared with each other share a process; unrelated ones (other allocation patterns) do not. */
const GROUPS = [
  ["codec-encode-16k", "zstd-compress-16k"],
  ["codec-decode-16k", "zstd-decompress-16k"],
  ["codec-encode-512", "codec-decode-512", "copy-512", "envelope-build-512"],
];

export default {
  name: NAME,
  description: "ValueCodec encode/decode of 16 KiB JSON vs raw zstd-napi; 512 B below threshold vs a Buffer copy",
  async run(ctx) {
    const timing = ctx.quick ? { warmupMs: 5, sliceMs: 5, slices: 2 } : { warmupMs: 150, sliceMs: 60, slices: 10 };
    const results = Object.fromEntries(BENCHES.map((b) => [b, []]));
    const stored = {};
    for (let round = 0; round < ctx.rounds; round++) {
      for (const group of GROUPS) {
        const child = await startChild("micro", {}, { label: `${NAME}-round${round}`, execArgv: ["--expose-gc"] });
        try {
          const benches = round % 2 === 0 ? group : [...group].reverse();
          const r = await child.call("codecInterleaved", { benches, seed: 42, ...timing });
          for (const b of group) {
            results[b].push(r[b].mbPerSec);
            if (r[b].storedBytes) stored[b] = r[b].storedBytes;
          }
        } finally {
          await child.stop();
        }
      }
      ctx.log(`  round ${round + 1}: ${BENCHES.map((b) => `${b} ${results[b].at(-1).toFixed(0)} MB/s`).join(", ")}`);
    }
    const ratios = (a, b) => results[a].map((v, i) => v / results[b][i]);
    const mb = (b) => `${fmt(median(results[b]), 0)} MB/s`;
    const envelope = stored["codec-encode-16k"];
    const frame = stored["zstd-compress-16k"];
    return {
      rows: [
        measured({ scenario: NAME, subject: "ValueCodec.encode 16 KiB JSON", baseline: "zstd-napi Compressor.compress (level 1)", ratios: ratios("codec-encode-16k", "zstd-compress-16k"), goal: { op: ">=", value: 0.9 }, context: `${mb("codec-encode-16k")} vs ${mb("zstd-compress-16k")}` }),
        measured({ scenario: NAME, subject: "ValueCodec.decode 16 KiB JSON", baseline: "zstd-napi Decompressor.decompress", ratios: ratios("codec-decode-16k", "zstd-decompress-16k"), goal: { op: ">=", value: 0.9 }, context: `${mb("codec-decode-16k")} vs ${mb("zstd-decompress-16k")}` }),
        measured({ scenario: NAME, subject: "ValueCodec stored bytes, 16 KiB JSON", baseline: "zstd-napi frame bytes", ratios: [envelope / frame], context: `${envelope} vs ${frame} B (compression ${(16384 / frame).toFixed(2)}:1); lower is better` }),
        measured({ scenario: NAME, subject: "ValueCodec.encode 512 B (below threshold)", baseline: "Buffer allocUnsafe + copy", ratios: ratios("codec-encode-512", "copy-512"), goal: { op: ">=", value: 0.9 }, context: `${mb("codec-encode-512")} vs ${mb("copy-512")}` }),
        measured({ scenario: NAME, subject: "Envelope build 512 B: a buffer from a 32 KiB slab, copy the header, copy the value", baseline: "Buffer allocUnsafe + copy", ratios: ratios("envelope-build-512", "copy-512"), context: `${mb("envelope-build-512")} vs ${mb("copy-512")}; encode's allocation and copies alone` }),
        measured({ scenario: NAME, subject: "ValueCodec.encode 512 B (below threshold)", baseline: "envelope build 512 B (encode without its checks)", ratios: ratios("codec-encode-512", "envelope-build-512"), context: `${mb("codec-encode-512")} vs ${mb("envelope-build-512")}; the codec's checks and header fields above its allocation and copies` }),
        measured({ scenario: NAME, subject: "ValueCodec.decode 512 B (below threshold)", baseline: "Buffer allocUnsafe + copy", ratios: ratios("codec-decode-512", "copy-512"), goal: { op: ">=", value: 0.9 }, context: `${mb("codec-decode-512")} vs ${mb("copy-512")}` }),
      ],
    };
  },
};
