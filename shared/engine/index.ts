/**
 * The PrepX matching engine: one price-time priority order book per symbol, plain TypeScript with no
 * Workers / Node APIs. See `docs/engine.md`.
 *
 * @example
 * ```ts
 * import { MatchingEngine, type EngineEvent } from "../shared/engine/index.ts";
 * const engine = new MatchingEngine({ symbol: "AAPL", tickSize: "0.01", lotSize: "1", minQtyLots: 1,
 *   maxQtyLots: 1_000_000, minNotionalTicksLots: 0, priceBandBps: 0 });
 * const out: EngineEvent[] = [];
 * engine.process({ kind: "place", now: Date.now(), orderId: "o1", account: "a1", side: "buy",
 *   type: "limit", tif: "gtc", qty: 10, limitPrice: 15_000 }, out);
 * ```
 */
export { MatchingEngine } from "./engine.ts";
export { EventLog } from "./event-log.ts";
export { stateHashOf } from "./hash.ts";
export { MAX_PRICE_BAND_BPS, MAX_PRICE_TICKS, MAX_QTY_LOTS } from "./limits.ts";
export {
  lotsToQty,
  notionalMicros,
  priceToTicks,
  qtyToLots,
  ticksToPrice,
  validateSymbolRules,
} from "./rules.ts";
export type * from "./types.ts";
