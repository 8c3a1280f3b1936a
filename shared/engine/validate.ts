/**
 * Stateless command checks shared by the fast engine and the reference engine, so both reject the same
 * commands with the same reason in the same order of precedence. Book-dependent checks (duplicate ids,
 * ownership, post-only, FOK) live in each engine: they are part of what the differential tests compare.
 *
 * Each function returns a reject reason, or null when the command passes.
 * @internal
 */
import { MAX_PRICE_TICKS } from "./limits.ts";
import type {
  CancelCommand,
  OrderType,
  PlaceCommand,
  RejectReason,
  ReplaceCommand,
  SetReferencePriceCommand,
  SymbolRules,
} from "./types.ts";

/** Longest accepted order id / account (characters). */
export const MAX_ID_LENGTH = 128;

export function isValidTime(now: unknown): boolean {
  return typeof now === "number" && Number.isSafeInteger(now) && now >= 0;
}

export function isValidId(id: unknown): id is string {
  return typeof id === "string" && id.length > 0 && id.length <= MAX_ID_LENGTH;
}

export function qtyReason(qty: unknown, rules: SymbolRules): RejectReason | null {
  if (typeof qty !== "number" || !Number.isFinite(qty) || qty <= 0) return "invalid_qty";
  if (!Number.isInteger(qty)) return "qty_not_lot_multiple";
  if (qty < rules.minQtyLots) return "qty_below_min";
  if (qty > rules.maxQtyLots) return "qty_above_max";
  return null;
}

export function priceReason(price: unknown): RejectReason | null {
  if (typeof price !== "number" || !Number.isFinite(price) || price <= 0) return "invalid_price";
  if (!Number.isInteger(price)) return "off_tick";
  if (price > MAX_PRICE_TICKS) return "invalid_price";
  return null;
}

/** True when `price` is outside the band of `bps` around `ref` (ref 0 or bps 0: no band). */
export function outOfBand(price: number, ref: number, bps: number): boolean {
  if (ref === 0 || bps === 0) return false;
  const distance = price > ref ? price - ref : ref - price;
  return distance * 10_000 > ref * bps;
}

export function isSide(v: unknown): boolean {
  return v === "buy" || v === "sell";
}

export function isOrderType(v: unknown): boolean {
  return v === "market" || v === "limit" || v === "stop" || v === "stop_limit";
}

export function isTif(v: unknown): boolean {
  return v === "day" || v === "gtc" || v === "ioc" || v === "fok";
}

export function isStp(v: unknown): boolean {
  return v === "cancel_newest" || v === "cancel_oldest" || v === "cancel_both";
}

export function hasLimitPrice(type: OrderType): boolean {
  return type === "limit" || type === "stop_limit";
}

export function hasStopPrice(type: OrderType): boolean {
  return type === "stop" || type === "stop_limit";
}

function notionalTooSmall(price: number, qty: number, rules: SymbolRules): boolean {
  // price × qty may round above 2^53, but rounding is monotonic and the minimum is a safe integer.
  return rules.minNotionalTicksLots > 0 && price > 0 && price * qty < rules.minNotionalTicksLots;
}

/**
 * Everything about a place command that does not depend on the book, in precedence order:
 * time, ids, enums, quantity, prices, post-only, expiry, halted, band, notional.
 */
export function checkPlace(
  cmd: PlaceCommand,
  rules: SymbolRules,
  referencePrice: number,
  halted: boolean,
): RejectReason | null {
  if (!isValidTime(cmd.now)) return "invalid_time";
  if (!isValidId(cmd.orderId)) return "invalid_order_id";
  if (!isValidId(cmd.account)) return "invalid_account";
  if (!isSide(cmd.side)) return "invalid_side";
  if (!isOrderType(cmd.type)) return "invalid_order_type";
  if (!isTif(cmd.tif)) return "invalid_tif";
  if (cmd.stp !== undefined && !isStp(cmd.stp)) return "invalid_stp";
  const qtyProblem = qtyReason(cmd.qty, rules);
  if (qtyProblem !== null) return qtyProblem;
  const needsLimit = hasLimitPrice(cmd.type);
  if (needsLimit) {
    if (cmd.limitPrice === undefined) return "missing_limit_price";
    const p = priceReason(cmd.limitPrice);
    if (p !== null) return p;
  } else if (cmd.limitPrice !== undefined) {
    return "unexpected_limit_price";
  }
  const needsStop = hasStopPrice(cmd.type);
  if (needsStop) {
    if (cmd.stopPrice === undefined) return "missing_stop_price";
    const p = priceReason(cmd.stopPrice);
    if (p !== null) return p;
  } else if (cmd.stopPrice !== undefined) {
    return "unexpected_stop_price";
  }
  if (cmd.postOnly !== undefined && cmd.postOnly !== false) {
    if (cmd.postOnly !== true || cmd.type !== "limit" || cmd.tif === "ioc" || cmd.tif === "fok") {
      return "post_only_invalid";
    }
  }
  if (cmd.expiresAt !== undefined && (cmd.tif === "day" || cmd.tif === "gtc")) {
    if (!isValidTime(cmd.expiresAt) || cmd.expiresAt <= cmd.now) return "invalid_expiry";
  }
  if (halted) return "halted";
  const bps = rules.priceBandBps;
  if (needsLimit && outOfBand(cmd.limitPrice as number, referencePrice, bps)) return "price_out_of_band";
  if (needsStop && outOfBand(cmd.stopPrice as number, referencePrice, bps)) return "price_out_of_band";
  const notionalPrice = needsLimit
    ? (cmd.limitPrice as number)
    : needsStop
      ? (cmd.stopPrice as number)
      : referencePrice;
  if (notionalTooSmall(notionalPrice, cmd.qty, rules)) return "min_notional";
  return null;
}

/** Cancel: time, ids. */
export function checkCancel(cmd: CancelCommand): RejectReason | null {
  if (!isValidTime(cmd.now)) return "invalid_time";
  if (!isValidId(cmd.orderId)) return "invalid_order_id";
  if (cmd.account !== undefined && typeof cmd.account !== "string") return "invalid_account";
  return null;
}

/** Replace, before the order is looked up: time, ids, something to change, halted. */
export function checkReplaceArgs(cmd: ReplaceCommand, halted: boolean): RejectReason | null {
  if (!isValidTime(cmd.now)) return "invalid_time";
  if (!isValidId(cmd.orderId) || !isValidId(cmd.newOrderId)) return "invalid_order_id";
  if (cmd.account !== undefined && typeof cmd.account !== "string") return "invalid_account";
  if (cmd.qty === undefined && cmd.limitPrice === undefined && cmd.stopPrice === undefined) {
    return "nothing_to_replace";
  }
  if (halted) return "halted";
  return null;
}

/**
 * Replace, once the order is known, owned and the new id is free: which fields may change, their values,
 * and the band (only for prices that change). The target order is passed as scalars (prices 0 when
 * absent) so the hot path allocates nothing.
 */
export function checkReplaceValues(
  cmd: ReplaceCommand,
  type: OrderType,
  triggered: boolean,
  limitPrice: number,
  stopPrice: number,
  rules: SymbolRules,
  referencePrice: number,
): RejectReason | null {
  const newLimit = cmd.limitPrice;
  const newStop = cmd.stopPrice;
  if (newLimit !== undefined && !hasLimitPrice(type)) return "unexpected_limit_price";
  if (newStop !== undefined && (!hasStopPrice(type) || triggered)) return "unexpected_stop_price";
  if (cmd.qty !== undefined) {
    const q = qtyReason(cmd.qty, rules);
    if (q !== null) return q;
  }
  if (newLimit !== undefined) {
    const p = priceReason(newLimit);
    if (p !== null) return p;
  }
  if (newStop !== undefined) {
    const p = priceReason(newStop);
    if (p !== null) return p;
  }
  const bps = rules.priceBandBps;
  if (newLimit !== undefined && newLimit !== limitPrice && outOfBand(newLimit, referencePrice, bps)) {
    return "price_out_of_band";
  }
  if (newStop !== undefined && newStop !== stopPrice && outOfBand(newStop, referencePrice, bps)) {
    return "price_out_of_band";
  }
  return null;
}

/** Notional check of the order a replace would create (qty and prices already valid). */
export function replaceNotionalReason(
  newQty: number,
  newLimit: number,
  newStop: number,
  rules: SymbolRules,
): RejectReason | null {
  const price = newLimit > 0 ? newLimit : newStop;
  return notionalTooSmall(price, newQty, rules) ? "min_notional" : null;
}

export function checkSetReferencePrice(cmd: SetReferencePriceCommand): RejectReason | null {
  if (!isValidTime(cmd.now)) return "invalid_time";
  return priceReason(cmd.price);
}
