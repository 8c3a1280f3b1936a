/**
 * Market-maker quoting, pure: from the reference price (or a real best bid / offer), the maker's inventory
 * and budgets to the ladder of quotes it wants, and from the quotes it has to the fewest order actions
 * that get there.
 *
 * Units: prices in ticks, quantities in lots, cash in micro-USD (all safe integers).
 *
 * Rules the ladder always keeps (property-tested):
 * - best ask − best bid ≥ `spreadTicks`; every bid < every ask;
 * - no maker quote crosses another participant's best price (a maker only ever provides liquidity);
 * - every price is ≥ 1 tick and inside the book's price band;
 * - Σ bid notional ≤ the bid budget and Σ ask lots ≤ the ask budget (the maker never asks its account for
 *   more than it has; the account's own risk checks apply on top);
 * - no bids once inventory ≥ `maxInventoryLots`, no asks once it is ≤ `minInventoryLots`.
 *
 * @example
 * ```ts
 * const ladder = desiredLadder(config, { centreTicks: 7_500, inventoryLots: 500, ... });
 * const actions = planRequote(currentQuotes, ladder, { bidsPaused: false, asksPaused: false });
 * ```
 */
import type { Side } from "../engine/types.ts";

export interface QuoteConfig {
  /** Distance between the maker's best bid and best ask, in ticks (≥ 1). */
  spreadTicks: number;
  /** Price levels per side. */
  levels: number;
  /** Ticks between consecutive levels of one side. */
  levelSpacingTicks: number;
  /** Lots at the best level. */
  levelSizeLots: number;
  /** Extra lots per level further from the best (deeper levels are larger). */
  sizeStepLots: number;
  /** Inventory the maker aims to hold, in lots. */
  targetInventoryLots: number;
  /**
   * Skew: both sides move down by this many ticks per `levelSizeLots` of inventory above target (up when
   * below), so a long maker sells more readily. Rounded half away from zero, capped at `maxSkewTicks`.
   */
  skewTicksPerLevelSize: number;
  maxSkewTicks: number;
  /** No bids at or above this inventory. */
  maxInventoryLots: number;
  /** No asks at or below this inventory. */
  minInventoryLots: number;
}

export interface QuoteLevel {
  price: number;
  qty: number;
}

export interface Ladder {
  bids: QuoteLevel[];
  asks: QuoteLevel[];
  /** The centre used (after skew), for the requote threshold and the status page. */
  centre: number;
  skew: number;
}

export interface LadderInput {
  /** Reference price (centre of the quotes) in ticks. */
  centreTicks: number;
  /** A real best bid / offer to quote around instead of `centreTicks ± spread / 2`. */
  bbo?: { bid: number; ask: number } | null;
  inventoryLots: number;
  /** Cash the bids may tie up, micro-USD. */
  bidBudgetMicros: number;
  /** Lots the asks may offer. */
  askBudgetLots: number;
  /** Micro-USD per tick × lot (tick 0.01 × lot 1 = 10,000). */
  microsPerTickLot: number;
  /** Inclusive price band of the book, ticks. */
  band: { low: number; high: number };
  /** The best prices of everyone else in the book (the maker's own orders excluded). */
  othersBestBid: number | null;
  othersBestAsk: number | null;
}

/** The first problem of a config, or null. */
export function checkQuoteConfig(c: QuoteConfig): string | null {
  const int = (v: number, min: number, max: number) => Number.isSafeInteger(v) && v >= min && v <= max;
  if (!int(c.spreadTicks, 1, 100_000)) return "spreadTicks must be an integer from 1 to 100000";
  if (!int(c.levels, 1, 50)) return "levels must be an integer from 1 to 50";
  if (!int(c.levelSpacingTicks, 1, 100_000)) return "levelSpacingTicks must be an integer from 1 to 100000";
  if (!int(c.levelSizeLots, 1, 1_000_000)) return "levelSizeLots must be an integer from 1 to 1000000";
  if (!int(c.sizeStepLots, 0, 1_000_000)) return "sizeStepLots must be an integer from 0 to 1000000";
  if (!int(c.targetInventoryLots, 0, 1e12)) return "targetInventoryLots must be a non-negative integer";
  if (
    !Number.isFinite(c.skewTicksPerLevelSize) ||
    c.skewTicksPerLevelSize < 0 ||
    c.skewTicksPerLevelSize > 1000
  ) {
    return "skewTicksPerLevelSize must be in [0, 1000]";
  }
  if (!int(c.maxSkewTicks, 0, 100_000)) return "maxSkewTicks must be an integer from 0 to 100000";
  if (!int(c.maxInventoryLots, 0, 1e12)) return "maxInventoryLots must be a non-negative integer";
  if (!int(c.minInventoryLots, 0, 1e12)) return "minInventoryLots must be a non-negative integer";
  if (c.minInventoryLots >= c.maxInventoryLots) return "minInventoryLots must be below maxInventoryLots";
  return null;
}

/** Round half away from zero. */
function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** The skew in ticks for an inventory: positive when long of target (quotes move down). */
export function inventorySkew(config: QuoteConfig, inventoryLots: number): number {
  const raw = roundHalfAway(
    (config.skewTicksPerLevelSize * (inventoryLots - config.targetInventoryLots)) / config.levelSizeLots,
  );
  return Math.max(-config.maxSkewTicks, Math.min(config.maxSkewTicks, raw));
}

/** The quotes the maker wants now. */
export function desiredLadder(config: QuoteConfig, input: LadderInput): Ladder {
  const skew = inventorySkew(config, input.inventoryLots);
  let bid: number;
  let ask: number;
  if (input.bbo && input.bbo.bid > 0 && input.bbo.ask > 0) {
    bid = input.bbo.bid - skew;
    ask = input.bbo.ask - skew;
    if (ask - bid < config.spreadTicks) {
      // Narrower than the maker's minimum (or crossed): widen around the real quote's middle.
      bid -= Math.floor((config.spreadTicks - (ask - bid)) / 2);
      ask = bid + config.spreadTicks;
    }
  } else {
    const centre = input.centreTicks - skew;
    bid = centre - Math.floor(config.spreadTicks / 2);
    ask = bid + config.spreadTicks;
  }
  // Never take liquidity: stay behind everyone else's best price on the other side.
  if (input.othersBestAsk !== null && bid >= input.othersBestAsk) bid = input.othersBestAsk - 1;
  if (input.othersBestBid !== null && ask <= input.othersBestBid) ask = input.othersBestBid + 1;
  // The two clamps above can only widen the spread unless the others' book is itself crossed or locked
  // within the spread; widen again so the maker's own spread rule still holds.
  if (ask - bid < config.spreadTicks) ask = bid + config.spreadTicks;
  const centre = Math.floor((bid + ask) / 2);

  const bids: QuoteLevel[] = [];
  const asks: QuoteLevel[] = [];
  const wantBids = input.inventoryLots < config.maxInventoryLots;
  const wantAsks = input.inventoryLots > config.minInventoryLots;
  let bidCash = input.bidBudgetMicros;
  let askLots = Math.min(input.askBudgetLots, Math.max(0, input.inventoryLots - config.minInventoryLots));
  for (let i = 0; i < config.levels; i++) {
    const qty = config.levelSizeLots + i * config.sizeStepLots;
    const bp = bid - i * config.levelSpacingTicks;
    if (wantBids && bp >= 1 && bp >= input.band.low && bp <= input.band.high) {
      const affordable = Math.floor(bidCash / (bp * input.microsPerTickLot));
      const q = Math.min(qty, affordable);
      if (q > 0) {
        bids.push({ price: bp, qty: q });
        bidCash -= q * bp * input.microsPerTickLot;
      }
    }
    const ap = ask + i * config.levelSpacingTicks;
    if (wantAsks && ap >= 1 && ap >= input.band.low && ap <= input.band.high) {
      const q = Math.min(qty, askLots);
      if (q > 0) {
        asks.push({ price: ap, qty: q });
        askLots -= q;
      }
    }
  }
  return { bids, asks, centre, skew };
}

/** One of the maker's resting orders. */
export interface RestingQuote {
  orderId: string;
  side: Side;
  price: number;
  /** Open (unfilled) lots. */
  remainingLots: number;
  /** Creation order (larger = newer); used to trim the newest first and keep the oldest's priority. */
  createdAt: number;
}

export type QuoteAction =
  | { kind: "cancel"; orderId: string; side: Side }
  | { kind: "replace"; orderId: string; side: Side; price: number; qty: number }
  | { kind: "place"; side: Side; price: number; qty: number };

export interface PlanOptions {
  /**
   * Refill pause per side (after that side was hit, for the configured refill delay): the plan adds no
   * quantity to the side (no places, no size increases), it only moves and trims what is there.
   */
  bidsPaused: boolean;
  asksPaused: boolean;
}

/**
 * The actions that turn `current` into `desired`, in the order to send them: cancels first (they free
 * reservations), then trims, then moves and places. Side order: when the ladder moves up the asks go
 * first, when it moves down the bids go first, so the maker's new quotes never meet its old ones.
 */
export function planRequote(
  current: readonly RestingQuote[],
  desired: Ladder,
  options: PlanOptions,
): QuoteAction[] {
  const bidPlan = planSide("buy", current, desired.bids, options.bidsPaused);
  const askPlan = planSide("sell", current, desired.asks, options.asksPaused);
  const oldBest = bestOf(current, "buy");
  const newBest = desired.bids[0]?.price ?? null;
  const movingUp = oldBest !== null && newBest !== null ? newBest > oldBest : false;
  const [first, second] = movingUp ? [askPlan, bidPlan] : [bidPlan, askPlan];
  return [
    ...first.cancels,
    ...second.cancels,
    ...first.trims,
    ...second.trims,
    ...first.moves,
    ...second.moves,
  ];
}

function bestOf(current: readonly RestingQuote[], side: Side): number | null {
  let best: number | null = null;
  for (const q of current) {
    if (q.side !== side) continue;
    if (best === null || (side === "buy" ? q.price > best : q.price < best)) best = q.price;
  }
  return best;
}

interface SidePlan {
  cancels: QuoteAction[];
  trims: QuoteAction[];
  moves: QuoteAction[];
}

function planSide(
  side: Side,
  current: readonly RestingQuote[],
  desired: readonly QuoteLevel[],
  paused: boolean,
): SidePlan {
  const plan: SidePlan = { cancels: [], trims: [], moves: [] };
  const byPrice = new Map<number, RestingQuote[]>();
  for (const q of current) {
    if (q.side !== side || q.remainingLots <= 0) continue;
    const list = byPrice.get(q.price) ?? [];
    list.push(q);
    byPrice.set(q.price, list);
  }
  const wanted = new Map(desired.map((l) => [l.price, l.qty]));
  const unwanted: RestingQuote[] = [];
  for (const [price, orders] of byPrice) {
    if (!wanted.has(price)) unwanted.push(...orders);
  }
  // Orders at prices the ladder no longer wants are re-used (replaced) oldest first, the rest canceled.
  unwanted.sort((a, b) => a.createdAt - b.createdAt || a.orderId.localeCompare(b.orderId));
  const missing: QuoteLevel[] = [];
  for (const level of desired) {
    const orders = byPrice.get(level.price);
    if (!orders) {
      missing.push(level);
      continue;
    }
    let resting = orders.reduce((s, o) => s + o.remainingLots, 0);
    if (resting > level.qty) {
      // Trim the newest orders first: the oldest keep their place in the queue.
      const newestFirst = [...orders].sort(
        (a, b) => b.createdAt - a.createdAt || b.orderId.localeCompare(a.orderId),
      );
      for (const o of newestFirst) {
        if (resting <= level.qty) break;
        const excess = resting - level.qty;
        if (o.remainingLots <= excess) {
          plan.cancels.push({ kind: "cancel", orderId: o.orderId, side });
          resting -= o.remainingLots;
        } else {
          // A smaller quantity at the same price keeps time priority.
          plan.trims.push({
            kind: "replace",
            orderId: o.orderId,
            side,
            price: o.price,
            qty: o.remainingLots - excess,
          });
          resting = level.qty;
        }
      }
    } else if (resting < level.qty && !paused) {
      plan.moves.push({ kind: "place", side, price: level.price, qty: level.qty - resting });
    }
  }
  // Best levels first: they matter most.
  for (const level of missing) {
    const reuse = unwanted.shift();
    if (reuse) {
      const qty = paused ? Math.min(level.qty, reuse.remainingLots) : level.qty;
      plan.moves.push({ kind: "replace", orderId: reuse.orderId, side, price: level.price, qty });
    } else if (!paused) {
      plan.moves.push({ kind: "place", side, price: level.price, qty: level.qty });
    }
  }
  for (const o of unwanted) plan.cancels.push({ kind: "cancel", orderId: o.orderId, side });
  return plan;
}

/**
 * The best bid and ask of everyone but the maker: the book's levels minus the maker's own resting lots.
 * `levels` are [price, qty] best first, as the book's snapshot gives them.
 */
export function othersBest(
  levels: { bids: readonly (readonly [number, number])[]; asks: readonly (readonly [number, number])[] },
  own: readonly RestingQuote[],
): { bid: number | null; ask: number | null } {
  const ownAt = (side: Side) => {
    const m = new Map<number, number>();
    for (const q of own) if (q.side === side) m.set(q.price, (m.get(q.price) ?? 0) + q.remainingLots);
    return m;
  };
  const pick = (side: Side, list: readonly (readonly [number, number])[]) => {
    const mine = ownAt(side);
    for (const [price, qty] of list) if (qty - (mine.get(price) ?? 0) > 0) return price;
    return null;
  };
  return { bid: pick("buy", levels.bids), ask: pick("sell", levels.asks) };
}

/**
 * The inclusive price band the book accepts around `reference`: the engine refuses a price whose
 * distance × 10,000 exceeds reference × bps. No band (bps 0) is [1, +∞).
 */
export function priceBand(reference: number, bps: number): { low: number; high: number } {
  if (reference <= 0 || bps <= 0) return { low: 1, high: Number.MAX_SAFE_INTEGER };
  const distance = Math.floor((reference * bps) / 10_000);
  return { low: Math.max(1, reference - distance), high: reference + distance };
}
