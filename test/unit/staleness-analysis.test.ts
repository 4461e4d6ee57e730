import { describe, expect, it } from "vitest";
import type { TruthEntry } from "../helpers/redis-truth.js";
import { analyzeStaleness, type ReadObservation, type WriteRecord } from "../helpers/staleness.js";

// The fault tests' checker must itself be right: it must see a stale read, and must not call a fresh one stale.
const timeline: Record<string, TruthEntry[]> = {
  k: [
    { value: "v0", at: 0 },
    { value: "v1", at: 1_000 },
    { value: null, at: 2_000 },
    { value: "v3", at: 6_000 },
  ],
};
const read = (value: unknown, start: number, end = start + 5, reader = "r"): ReadObservation => ({ reader, key: "k", value, start, end });
const analyze = (reads: ReadObservation[], writes: WriteRecord[] = []) => analyzeStaleness((key) => timeline[key] ?? [], reads, writes, 3_000);

describe("analyzeStaleness (the coherence tests' checker)", () => {
  it("counts a read of the value Redis held at its start, or took before it returned, as fresh", () => {
    const report = analyze([read("v0", 500), read("v1", 1_000), read(null, 2_500), read("v0", 990, 1_010), read("v3", 5_990, 6_020)]);
    expect(report).toMatchObject({ reads: 5, staleReads: 0, stalePastBound: 0, worstMs: 0 });
  });

  it("measures a stale read from the moment Redis replaced the value, and counts each missed change once past the bound", () => {
    const report = analyze([read("v1", 2_400), read("v0", 4_500, 4_505, "a"), read("v0", 4_900, 4_905, "b"), read("v1", 5_500), read("v0", 7_000)]);
    expect(report.staleReads).toBe(5);
    expect(report.worstMs).toBe(6_000); // v0 replaced at 1000, read at 7000
    expect(report.stalePastBound).toBe(2); // the change to v1 (missed at 4500, 4900 and 7000) and the delete (missed at 5500)
    expect(report.examples[0]).toMatch(/a read k="v0" 3500 ms after Redis replaced it \(at \+4500 ms\)/);
  });

  it("a value Redis never held (a failed write) is stale from the moment the write failed, not before", () => {
    const failed: WriteRecord = { writer: "w", op: "set", keys: ["k"], values: ["lost"], start: 2_900, end: 3_000, outcome: "UNAVAILABLE" };
    expect(analyze([read("lost", 2_950)], [failed]).staleReads).toBe(0);
    expect(analyze([read("lost", 7_000)], [failed])).toMatchObject({ staleReads: 1, worstMs: 4_000, stalePastBound: 1 });
  });
});
