/**
 * Turning Alpaca-shaped order requests into what the account reserves for and what the book receives.
 * Pure: the UserSession supplies the symbol and the market context.
 * @internal
 */
import { parseMicros } from "../../shared/decimal.ts";
import { priceToTicks, qtyToLots } from "../../shared/engine/rules.ts";
import type { OrderType, PlaceCommand, Side, TimeInForce } from "../../shared/engine/types.ts";
import type { SymbolSpec } from "../../shared/symbols.ts";
import type { ApiFailure } from "./outcome.ts";
import { fail } from "./outcome.ts";

/** `POST /v2/orders` as the edge validated it (shapes only; meaning is checked here). */
export interface PlaceOrderRequest {
  symbol: string;
  side: Side;
  type: OrderType;
  time_in_force: TimeInForce;
  qty?: string;
  notional?: string;
  limit_price?: string;
  stop_price?: string;
  client_order_id?: string;
}

/** `PATCH /v2/orders/:id`: the fields Alpaca lets a replace change. */
export interface ReplaceOrderRequest {
  qty?: string;
  limit_price?: string;
  stop_price?: string;
  client_order_id?: string;
}

export interface ParsedOrder {
  symbol: string;
  side: Side;
  type: OrderType;
  tif: TimeInForce;
  qtyLots?: number;
  notionalMicros?: number;
  limitTicks?: number;
  stopTicks?: number;
}

const PRICE_REASONS: Record<string, string> = {
  invalid_price: "must be a positive decimal",
  off_tick: "is not a multiple of the tick size",
  out_of_range: "is out of range",
};
const QTY_REASONS: Record<string, string> = {
  invalid_qty: "must be a positive decimal",
  qty_not_lot_multiple: "is not a multiple of the lot size",
  out_of_range: "is out of range",
};

function price(spec: SymbolSpec, field: string, value: string): number | ApiFailure {
  const parsed = priceToTicks(spec, value);
  if (parsed.ok) return parsed.value;
  const code = parsed.reason === "off_tick" ? "off_tick" : "invalid_price";
  return fail(422, code, `${field} ${PRICE_REASONS[parsed.reason]} (tick size ${spec.tickSize})`);
}

function quantity(spec: SymbolSpec, value: string): number | ApiFailure {
  const parsed = qtyToLots(spec, value);
  if (parsed.ok) return parsed.value;
  const code = parsed.reason === "qty_not_lot_multiple" ? "qty_not_lot_multiple" : "invalid_qty";
  return fail(422, code, `qty ${QTY_REASONS[parsed.reason]} (lot size ${spec.lotSize})`);
}

const isFailure = (v: unknown): v is ApiFailure => typeof v === "object" && v !== null && "status" in v;

/** Check the meaning of an order request against its symbol; units come back as integers. */
export function parsePlaceRequest(spec: SymbolSpec, req: PlaceOrderRequest): ParsedOrder | ApiFailure {
  const out: ParsedOrder = { symbol: spec.symbol, side: req.side, type: req.type, tif: req.time_in_force };
  const needsLimit = req.type === "limit" || req.type === "stop_limit";
  const needsStop = req.type === "stop" || req.type === "stop_limit";
  if (needsLimit && req.limit_price === undefined) {
    return fail(422, "missing_limit_price", `limit_price is required for ${req.type} orders`);
  }
  if (!needsLimit && req.limit_price !== undefined) {
    return fail(422, "unexpected_limit_price", `limit_price is not allowed for ${req.type} orders`);
  }
  if (needsStop && req.stop_price === undefined) {
    return fail(422, "missing_stop_price", `stop_price is required for ${req.type} orders`);
  }
  if (!needsStop && req.stop_price !== undefined) {
    return fail(422, "unexpected_stop_price", `stop_price is not allowed for ${req.type} orders`);
  }
  if ((req.qty === undefined) === (req.notional === undefined)) {
    return fail(422, "invalid_qty", "give exactly one of qty and notional");
  }
  if (req.limit_price !== undefined) {
    const v = price(spec, "limit_price", req.limit_price);
    if (isFailure(v)) return v;
    out.limitTicks = v;
  }
  if (req.stop_price !== undefined) {
    const v = price(spec, "stop_price", req.stop_price);
    if (isFailure(v)) return v;
    out.stopTicks = v;
  }
  if (req.qty !== undefined) {
    const v = quantity(spec, req.qty);
    if (isFailure(v)) return v;
    out.qtyLots = v;
  } else if (req.notional !== undefined) {
    const v = parseMicros(req.notional);
    if (!v.ok || v.value <= 0)
      return fail(422, "invalid_notional", "notional must be a positive decimal amount");
    out.notionalMicros = v.value;
  }
  return out;
}

/** The end of the UTC day that contains `now`: when a `day` order expires (PrepX markets never close). */
export function endOfUtcDay(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}

/**
 * The engine command for an accepted reservation. A buy without a limit (market, stop) goes to the book
 * with the protective price the cash was reserved at as its limit, so no fill can cost more than was
 * reserved: market → IOC (or FOK) limit, stop → stop_limit. Sells go as they are.
 */
export function bookPlaceCommand(
  order: ParsedOrder,
  ids: { orderId: string; account: string },
  qtyLots: number,
  protectivePriceTicks: number | null,
  now: number,
): Omit<PlaceCommand, "now"> & { now: number } {
  const cmd: PlaceCommand = {
    kind: "place",
    now,
    orderId: ids.orderId,
    account: ids.account,
    side: order.side,
    type: order.type,
    tif: order.tif,
    qty: qtyLots,
  };
  if (order.limitTicks !== undefined) cmd.limitPrice = order.limitTicks;
  if (order.stopTicks !== undefined) cmd.stopPrice = order.stopTicks;
  if (order.type === "market") {
    // Market orders never rest: whatever does not fill at once is canceled.
    cmd.tif = order.tif === "fok" ? "fok" : "ioc";
    if (protectivePriceTicks !== null) {
      cmd.type = "limit";
      cmd.limitPrice = protectivePriceTicks;
    }
  } else if (order.type === "stop" && protectivePriceTicks !== null) {
    cmd.type = "stop_limit";
    cmd.limitPrice = protectivePriceTicks;
  }
  if ((cmd.tif === "day" || cmd.tif === "gtc") && order.tif === "day") cmd.expiresAt = endOfUtcDay(now);
  return cmd;
}
