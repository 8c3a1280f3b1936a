/**
 * Rendering of order records in Alpaca's trading API shapes: decimal strings for money and quantities,
 * ISO timestamps, nulls where Alpaca has nulls.
 */

import { formatMicros } from "../decimal.ts";
import { lotsToQty, ticksToPrice } from "../engine/rules.ts";
import type { SymbolRules } from "../engine/types.ts";
import type { OrderRecord, OrderUpdate } from "./lifecycle.ts";

export interface AlpacaOrder {
  id: string;
  client_order_id: string;
  created_at: string;
  updated_at: string;
  submitted_at: string;
  filled_at: string | null;
  expired_at: string | null;
  canceled_at: string | null;
  failed_at: string | null;
  replaced_at: string | null;
  replaced_by: string | null;
  replaces: string | null;
  asset_id: string;
  symbol: string;
  asset_class: "us_equity";
  notional: string | null;
  qty: string | null;
  filled_qty: string;
  filled_avg_price: string | null;
  order_class: "simple";
  order_type: string;
  type: string;
  side: string;
  position_intent: "buy_to_open" | "sell_to_close" | "sell_to_open" | "buy_to_close";
  time_in_force: string;
  limit_price: string | null;
  stop_price: string | null;
  status: string;
  extended_hours: false;
  legs: null;
  trail_percent: null;
  trail_price: null;
  hwm: null;
  expires_at: string | null;
  /** PrepX extension: why the order was rejected or canceled, as a stable code. */
  reason: string | null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Extra decimals of an average price beyond the tick's, as Alpaca reports averages finer than a tick. */
const AVG_PRICE_EXTRA_DECIMALS = 4;

/**
 * Σ(price × qty) / qty as a decimal string, rounded half-up to the tick's decimals + 4. Computed in
 * bigint because the intermediate product can exceed 2^53 for large fills.
 */
export function averagePrice(
  rules: Pick<SymbolRules, "tickSize">,
  valueTicksLots: number,
  qtyLots: number,
): string {
  const [intPart, fracPart = ""] = rules.tickSize.split(".");
  const tickScale = fracPart.length;
  const tickUnits = BigInt(`${intPart}${fracPart}`);
  const scale = tickScale + AVG_PRICE_EXTRA_DECIMALS;
  // price = value × tick / qty, in units of 10^-scale: value × tickUnits × 10^extra / qty.
  const numerator = BigInt(valueTicksLots) * tickUnits * 10n ** BigInt(AVG_PRICE_EXTRA_DECIMALS);
  const q = BigInt(qtyLots);
  const units = (numerator * 2n + q) / (2n * q);
  const digits = units.toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale).replace(/0+$/, "");
  const minFrac = frac.padEnd(tickScale, "0");
  return minFrac.length > 0 ? `${whole}.${minFrac}` : whole;
}

/** A stable asset id per symbol (Alpaca clients expect a UUID-shaped string). */
export function assetIdFor(symbol: string): string {
  // FNV-1a over the symbol spread into UUID form; deterministic, no crypto needed.
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < symbol.length; i++) {
    h1 = Math.imul(h1 ^ symbol.charCodeAt(i), 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ symbol.charCodeAt(i), 0x811c9dc5) >>> 0;
  }
  const hex = (h1.toString(16).padStart(8, "0") + h2.toString(16).padStart(8, "0")).repeat(2);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function toAlpacaOrder(
  order: OrderRecord,
  rules: Pick<SymbolRules, "tickSize" | "lotSize">,
  positionQtyBefore = 0,
): AlpacaOrder {
  const price = (ticks: number | null) => (ticks === null ? null : ticksToPrice(rules, ticks));
  const opening = order.side === "buy" ? positionQtyBefore >= 0 : positionQtyBefore <= 0;
  const intent =
    order.side === "buy"
      ? opening
        ? "buy_to_open"
        : "buy_to_close"
      : opening
        ? "sell_to_open"
        : "sell_to_close";
  return {
    id: order.id,
    client_order_id: order.clientOrderId,
    created_at: new Date(order.createdAt).toISOString(),
    updated_at: new Date(order.updatedAt).toISOString(),
    submitted_at: new Date(order.submittedAt).toISOString(),
    filled_at: iso(order.filledAt),
    expired_at: iso(order.expiredAt),
    canceled_at: iso(order.canceledAt),
    failed_at: iso(order.failedAt),
    replaced_at: iso(order.replacedAt),
    replaced_by: order.replacedBy,
    replaces: order.replaces,
    asset_id: assetIdFor(order.symbol),
    symbol: order.symbol,
    asset_class: "us_equity",
    notional: order.notionalMicros === null ? null : formatMicros(order.notionalMicros, { trimZeros: true }),
    qty: order.notionalMicros === null ? lotsToQty(rules, order.qtyLots, true) : null,
    filled_qty: lotsToQty(rules, order.filledQtyLots, true),
    filled_avg_price:
      order.filledQtyLots > 0 ? averagePrice(rules, order.filledValue, order.filledQtyLots) : null,
    order_class: "simple",
    order_type: order.type,
    type: order.type,
    side: order.side,
    position_intent: intent,
    time_in_force: order.tif,
    limit_price: price(order.limitTicks),
    stop_price: price(order.stopTicks),
    status: order.status,
    extended_hours: false,
    legs: null,
    trail_percent: null,
    trail_price: null,
    hwm: null,
    expires_at: iso(order.expiresAt),
    reason: order.reason,
  };
}

export interface AlpacaTradeUpdate {
  event: string;
  execution_id?: string;
  order: AlpacaOrder;
  timestamp: string;
  price?: string;
  qty?: string;
  position_qty?: string;
}

/** A `trade_updates` message body as Alpaca streams it. */
export function toTradeUpdate(
  update: OrderUpdate,
  order: OrderRecord,
  rules: Pick<SymbolRules, "tickSize" | "lotSize">,
  positionQtyLots: number,
): AlpacaTradeUpdate {
  const body: AlpacaTradeUpdate = {
    event: update.event,
    order: toAlpacaOrder(order, rules),
    timestamp: new Date(update.at).toISOString(),
  };
  if (update.priceTicks !== undefined && update.qtyLots !== undefined) {
    body.price = ticksToPrice(rules, update.priceTicks);
    body.qty = lotsToQty(rules, update.qtyLots, true);
    body.position_qty = (positionQtyLots < 0 ? "-" : "") + lotsToQty(rules, Math.abs(positionQtyLots), true);
    if (update.fillId !== undefined) body.execution_id = `${order.symbol}-${update.fillId}`;
  }
  return body;
}
