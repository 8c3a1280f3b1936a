/**
 * The PrepX account model: cash, reservations, positions (average cost), fees and Alpaca-shaped views, as
 * pure functions over an immutable `Account` value. No Workers / Node APIs: the UserSession Durable Object
 * wraps it and persists `toSnapshot(account)`. See `docs/account-model.md`.
 *
 * @example
 * ```ts
 * import { accountView, applyFill, createAccount, reserveForOrder } from "../shared/account/index.ts";
 * const rules = { symbol: "AAPL", tickSize: "0.01", lotSize: "1", minQtyLots: 1, maxQtyLots: 1_000_000,
 *   minNotionalTicksLots: 0 };
 * const created = createAccount({ accountId: "u1" }); // 100,000 USD
 * if (!created.ok) throw new Error(created.message);
 * const r = reserveForOrder(created.account, { orderId: "o1", symbol: "AAPL", side: "buy", type: "limit",
 *   qtyLots: 10, limitPriceTicks: 10_000 }, { rules }); // reserves 1,000 USD
 * if (!r.ok) return r.code; // e.g. "insufficient_buying_power"
 * // ... submit to the book; then, for each fill event of o1 (taker reply or maker outbox, maybe twice):
 * const f = applyFill(r.account, { fillId: "AAPL:17", orderId: "o1", priceTicks: 10_000, qtyLots: 10 });
 * if (f.ok) accountView(f.account, { AAPL: 10_050 }); // { account: { cash: "99000", equity: "100005", ... } }
 * ```
 */
export {
  applyFill,
  applyOrderClosed,
  buyingPowerMicros,
  createAccount,
  DEFAULT_ACCOUNT_CONFIG,
  DEFAULT_STARTING_CASH_MICROS,
  MAX_ID_LENGTH,
  markToMarket,
  type PriceMarks,
  qtyAvailableLots,
  releaseReservation,
  remainingLots,
  reserveForOrder,
  reset,
} from "./account.ts";
export { grantPosition } from "./grant.ts";
export { checkInvariants, type InvariantResult } from "./invariants.ts";
export { applyTrade, type PositionAmounts, releasedBasis, type TradeEffect } from "./position.ts";
export {
  ACCOUNT_SNAPSHOT_VERSION,
  type AccountSnapshot,
  fromSnapshot,
  type OrderSnapshot,
  type PositionSnapshot,
  toSnapshot,
} from "./snapshot.ts";
export type * from "./types.ts";
export {
  type AccountSymbolRules,
  type FeeSchedule,
  MAX_FEE_BPS,
  type SymbolUnits,
  symbolUnitsOf,
} from "./units.ts";
export { accountView, equityMicros, rollTradingDay } from "./view.ts";
