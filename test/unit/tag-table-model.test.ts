import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TagTable } from "../../server/engine/tag-table.js";

/*
 * A model of a TagTable with a durable tier. Tag-epoch reads snapshot the durable epochs when they
 * start (the oldest they can be) and land later; own InvalidateTags capture the generation, bump the durable tier at
 * once and land later (as cache-engine does: remember on same generation, else forget); remote invalidations are heard
 * at once (forget). Invariants after every step: a held epoch is never below what this instance acknowledged or heard
 * (no unhidden value), and never above the durable truth (nothing hidden wrongly).
 */
const TAGS = ["a", "b", "c", "d", "e"];
type Op =
  | { k: "read"; tags: string[] }
  | { k: "land"; i: number }
  | { k: "inv"; tags: string[] }
  | { k: "invLand"; i: number }
  | { k: "remote"; tags: string[] }
  | { k: "evict" };
const tagsArb = fc.uniqueArray(fc.constantFrom(...TAGS), { minLength: 1, maxLength: 3 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant("read" as const), tags: tagsArb }),
  fc.record({ k: fc.constant("land" as const), i: fc.nat(7) }),
  fc.record({ k: fc.constant("inv" as const), tags: tagsArb }),
  fc.record({ k: fc.constant("invLand" as const), i: fc.nat(7) }),
  fc.record({ k: fc.constant("remote" as const), tags: tagsArb }),
  fc.constant({ k: "evict" as const }),
);

describe("TagTable model with evictions bumping the generation", () => {
  it("never holds an epoch below an acknowledged/heard one nor above the truth", () => {
    let remembered = 0;
    let reads = 0;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(opArb, { maxLength: 60 }), (maxTags, ops) => {
        const table = new TagTable(maxTags, false);
        const durable = new Map<string, number>();
        const known = new Map<string, number>(); // floor: acked own invalidations and heard remote ones
        let counter = 0;
        const pendingReads: { tags: string[]; epochs: number[]; gen: number }[] = [];
        const pendingInv: { tags: string[]; epoch: number; gen: number }[] = [];
        for (const op of ops) {
          if (op.k === "read") pendingReads.push({ tags: op.tags, epochs: op.tags.map((t) => durable.get(t) ?? 0), gen: table.generation });
          else if (op.k === "land" && pendingReads.length > 0) {
            const r = pendingReads.splice(op.i % pendingReads.length, 1)[0]!;
            const g = table.generation;
            table.remember(r.tags, r.epochs, r.gen);
            reads++;
            if (r.gen === g) remembered++;
          } else if (op.k === "inv") {
            const gen = table.generation;
            const epoch = ++counter;
            for (const t of op.tags) durable.set(t, epoch);
            pendingInv.push({ tags: op.tags, epoch, gen });
          } else if (op.k === "invLand" && pendingInv.length > 0) {
            const v = pendingInv.splice(op.i % pendingInv.length, 1)[0]!;
            if (!table.remember(v.tags, v.tags.map(() => v.epoch), v.gen)) table.forget(v.tags); // as CacheEngine.invalidateTags does
            for (const t of v.tags) known.set(t, Math.max(known.get(t) ?? 0, v.epoch));
          } else if (op.k === "remote") {
            const epoch = ++counter;
            for (const t of op.tags) durable.set(t, epoch);
            table.forget(op.tags);
            for (const t of op.tags) known.set(t, epoch);
          } else if (op.k === "evict") table.evictOne();
          for (const t of TAGS) {
            const held = table.epochOf(t);
            if (held === undefined) continue;
            expect(held, `tag ${t} below acknowledged`).toBeGreaterThanOrEqual(known.get(t) ?? 0);
            expect(held, `tag ${t} above truth`).toBeLessThanOrEqual(durable.get(t) ?? 0);
          }
        }
      }),
      { numRuns: 3000, seed: 7 },
    );
    expect(remembered).toBeGreaterThan(0);
  });
});
