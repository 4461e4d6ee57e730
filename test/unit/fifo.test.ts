import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Fifo } from "../../server/engine/fifo.js";

describe("Fifo", () => {
  it("behaves as an array used as a queue, across growth and shrinking", () => {
    const op = fc.oneof(
      { weight: 3, arbitrary: fc.integer({ min: 1, max: 70 }).map((n) => ({ push: n })) },
      { weight: 3, arbitrary: fc.integer({ min: 1, max: 70 }).map((n) => ({ shift: n })) },
      { weight: 1, arbitrary: fc.constant({ clear: true }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const fifo = new Fifo<number>();
        const model: number[] = [];
        let next = 0;
        for (const o of ops) {
          if ("push" in o) {
            for (let i = 0; i < o.push; i++, next++) {
              fifo.push(next);
              model.push(next);
            }
          } else if ("shift" in o) {
            for (let i = 0; i < o.shift; i++) expect(fifo.shift()).toBe(model.shift());
          } else {
            fifo.clear();
            model.length = 0;
          }
          expect(fifo.length).toBe(model.length);
          expect(fifo.peek()).toBe(model[0]);
          expect(fifo.at(model.length - 1)).toBe(model.at(-1));
          expect(fifo.at(model.length)).toBeUndefined();
          expect(fifo.at(-1)).toBeUndefined();
        }
        expect([...fifo]).toEqual(model);
      }),
    );
  });
});
