/**
 * Preloaded (`node --import`) into a child when the run asks for allocation
 * profiles (`--alloc-profile`): samples allocations (on average one per
 * 4 KiB allocated), those that garbage collection has freed included, which
 * V8's sampling heap profiler leaves out by default (`--heap-prof` keeps
 * only what is still alive). serveChild writes the profile to
 * BENCH_ALLOC_FILE as the child stops; summarize it with
 * bench/profile-summary.js.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";

const file = process.env.BENCH_ALLOC_FILE;
if (file) {
  const session = new Session();
  session.connect();
  await session.post("HeapProfiler.enable");
  await session.post("HeapProfiler.startSampling", { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  globalThis.__benchWriteAllocations = async () => {
    const { profile } = await session.post("HeapProfiler.stopSampling");
    writeFileSync(file, JSON.stringify(profile));
  };
}
