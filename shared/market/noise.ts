/**
 * Noise takers: simulated traders that send small market orders at random, so the tape, quotes and bars
 * move even when no user trades. Pure: the decision of one taker for one tick, from a seeded generator.
 *
 * Each tick a taker trades with probability `tradeProbability`; the side is a coin flip tilted towards
 * its target inventory (a taker that has sold most of its shares buys more often, one that is long sells
 * more often), and the size is uniform in `[minLots, maxLots]`, capped by what the account can afford.
 */
import type { Side } from "../engine/types.ts";
import type { Prng } from "./prng.ts";

export interface NoiseConfig {
  /** Number of taker accounts per symbol (0 turns them off). */
  takers: number;
  /** Chance that one taker trades in one tick. */
  tradeProbability: number;
  minLots: number;
  maxLots: number;
  /** Inventory each taker tends towards (and is granted at start), lots. */
  targetInventoryLots: number;
}

export interface NoiseOrder {
  side: Side;
  qtyLots: number;
}

/** The first problem of a config, or null. */
export function checkNoiseConfig(c: NoiseConfig): string | null {
  if (!Number.isSafeInteger(c.takers) || c.takers < 0 || c.takers > 20) return "takers must be 0–20";
  if (!Number.isFinite(c.tradeProbability) || c.tradeProbability < 0 || c.tradeProbability > 1) {
    return "tradeProbability must be in [0, 1]";
  }
  if (!Number.isSafeInteger(c.minLots) || c.minLots < 1) return "minLots must be ≥ 1";
  if (!Number.isSafeInteger(c.maxLots) || c.maxLots < c.minLots || c.maxLots > 1_000_000) {
    return "maxLots must be from minLots to 1000000";
  }
  if (!Number.isSafeInteger(c.targetInventoryLots) || c.targetInventoryLots < 0) {
    return "targetInventoryLots must be a non-negative integer";
  }
  return null;
}

/** The random part of one taker's tick: whether it trades, and the draws for side and size. */
export interface NoiseDraw {
  sideDraw: number;
  sizeDraw: number;
}

/**
 * Whether one taker trades this tick (`null`: it does not). Exactly three draws per call whatever the
 * outcome, so the random stream, and every later decision, does not depend on the accounts' state.
 */
export function drawNoise(rng: Prng, config: NoiseConfig): NoiseDraw | null {
  const trade = rng.uniform();
  const sideDraw = rng.uniform();
  const sizeDraw = rng.uniform();
  return trade < config.tradeProbability ? { sideDraw, sizeDraw } : null;
}

/** The order of a taker that trades, from its draw and its account (`null` when it can afford nothing). */
export function noiseOrder(
  draw: NoiseDraw,
  config: NoiseConfig,
  account: { inventoryLots: number; affordableBuyLots: number },
): NoiseOrder | null {
  const target = Math.max(1, config.targetInventoryLots);
  // P(buy) from 0.8 (empty) through 0.5 (at target) to 0.2 (twice the target or more).
  const tilt = Math.max(-1, Math.min(1, (target - account.inventoryLots) / target));
  const side: Side = draw.sideDraw < 0.5 + 0.3 * tilt ? "buy" : "sell";
  let qty = config.minLots + Math.floor(draw.sizeDraw * (config.maxLots - config.minLots + 1));
  qty = Math.min(qty, side === "buy" ? account.affordableBuyLots : account.inventoryLots);
  return qty >= 1 ? { side, qtyLots: qty } : null;
}
