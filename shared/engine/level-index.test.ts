import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LevelIndex } from "./level-index.ts";

describe("LevelIndex", () => {
  type Op = { k: "insert"; price: number } | { k: "remove"; pick: number } | { k: "removeBest" };
  // Prices 64 apart share a cache slot, so cached levels are evicted and replaced as well as dropped.
  const priceArb = fc.oneof(
    fc.integer({ min: 1, max: 40 }),
    fc.integer({ min: 1, max: 4 }).map((n) => n * 64),
  );
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ k: fc.constant("insert" as const), price: priceArb }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("remove" as const), pick: fc.nat(1_000) }) },
    { weight: 1, arbitrary: fc.constant({ k: "removeBest" as const }) },
  );

  it("finds, orders and removes levels like a sorted map, whatever its price cache holds", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1 as const, -1 as const),
        fc.array(opArb, { maxLength: 200 }),
        (dir, ops) => {
          const index = new LevelIndex(dir, 2);
          const model = new Map<number, number>();
          let nextLevel = 0;
          // Best first: highest price for dir 1, lowest for dir -1.
          const sorted = () => [...model.keys()].sort((a, b) => (b - a) * dir);
          for (const op of ops) {
            if (op.k === "insert") {
              if (model.has(op.price)) continue;
              const level = nextLevel++;
              index.insert(op.price, level);
              model.set(op.price, level);
            } else if (op.k === "remove") {
              const prices = sorted();
              if (prices.length === 0) continue;
              const price = prices[op.pick % prices.length] as number;
              index.remove(price);
              model.delete(price);
            } else {
              const best = sorted()[0];
              if (best === undefined) continue;
              index.removeBest();
              model.delete(best);
            }
            for (let price = 1; price <= 256; price++) expect(index.find(price)).toBe(model.get(price) ?? -1);
            const prices = sorted();
            expect(index.n).toBe(prices.length);
            expect(index.best()).toBe(prices.length === 0 ? -1 : model.get(prices[0] as number));
            prices.forEach((price, i) => {
              expect(index.levelFromBest(i)).toBe(model.get(price));
            });
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
