import { describe, expect, it } from "vitest";
import { drawNoise, type NoiseConfig, noiseOrder } from "./noise.ts";
import { Prng } from "./prng.ts";

const config: NoiseConfig = {
  takers: 2,
  tradeProbability: 0.3,
  minLots: 1,
  maxLots: 40,
  targetInventoryLots: 100,
};

describe("noise takers", () => {
  it("trade about as often as configured, reproducibly from the seed", () => {
    const run = () => {
      const rng = Prng.fromSeed("noise");
      return Array.from({ length: 10_000 }, () => drawNoise(rng, config) !== null);
    };
    const a = run();
    expect(run()).toEqual(a);
    const rate = a.filter(Boolean).length / a.length;
    expect(rate).toBeGreaterThan(0.27);
    expect(rate).toBeLessThan(0.33);
  });

  it("lean towards buying when short of their target and selling when long", () => {
    const rng = Prng.fromSeed("tilt");
    let buysWhenEmpty = 0;
    let buysWhenLong = 0;
    for (let i = 0; i < 2_000; i++) {
      const draw = { sideDraw: rng.uniform(), sizeDraw: rng.uniform() };
      if (noiseOrder(draw, config, { inventoryLots: 0, affordableBuyLots: 1_000 })?.side === "buy")
        buysWhenEmpty++;
      if (noiseOrder(draw, config, { inventoryLots: 300, affordableBuyLots: 1_000 })?.side === "buy")
        buysWhenLong++;
    }
    expect(buysWhenEmpty).toBeGreaterThan(1_400);
    expect(buysWhenLong).toBeLessThan(600);
  });

  it("never sells more than they hold or buys more than they can afford", () => {
    const rng = Prng.fromSeed("caps");
    for (let i = 0; i < 2_000; i++) {
      const draw = { sideDraw: rng.uniform(), sizeDraw: rng.uniform() };
      const account = { inventoryLots: rng.int(0, 5), affordableBuyLots: rng.int(0, 5) };
      const order = noiseOrder(draw, config, account);
      if (order === null) continue;
      expect(order.qtyLots).toBeLessThanOrEqual(
        order.side === "buy" ? account.affordableBuyLots : account.inventoryLots,
      );
      expect(order.qtyLots).toBeGreaterThanOrEqual(1);
    }
  });
});
