/**
 * The life of one order as its owner sees it: a record kept by the owner's UserSession, moved forward by
 * the events of the symbol's order book, and rendered in Alpaca's shapes (order objects and
 * `trade_updates` events).
 *
 * Pure: no clock, no storage. The owner dedupes events by their stable id (`${symbol}:${seq}`) before
 * applying them, because maker and taker events arrive both in the synchronous reply and through the
 * book's outbox.
 */
import type { EngineEvent, OrderType, Side, TimeInForce } from "../engine/types.ts";

/** Alpaca's order statuses that PrepX produces. */
export type OrderStatus =
  | "pending_new"
  | "new"
  | "partially_filled"
  | "filled"
  | "canceled"
  | "expired"
  | "replaced"
  | "rejected";

/** Alpaca's `trade_updates` event names that PrepX produces. */
export type TradeUpdateEventName =
  | "new"
  | "fill"
  | "partial_fill"
  | "canceled"
  | "expired"
  | "replaced"
  | "rejected";

export const OPEN_STATUSES: ReadonlySet<OrderStatus> = new Set(["pending_new", "new", "partially_filled"]);

export interface OrderRecord {
  id: string;
  clientOrderId: string;
  account: string;
  symbol: string;
  side: Side;
  type: OrderType;
  tif: TimeInForce;
  /** Ordered quantity in lots. */
  qtyLots: number;
  /** For notional orders: the cash amount asked for, in micro-units (qty was derived from it). */
  notionalMicros: number | null;
  limitTicks: number | null;
  stopTicks: number | null;
  filledQtyLots: number;
  /** Σ price × qty over the fills, in ticks × lots; divided by filledQtyLots it is the average price. */
  filledValue: number;
  status: OrderStatus;
  /** Engine reject reason or cancel reason, when there is one. */
  reason: string | null;
  createdAt: number;
  updatedAt: number;
  submittedAt: number;
  filledAt: number | null;
  canceledAt: number | null;
  expiredAt: number | null;
  failedAt: number | null;
  replacedAt: number | null;
  replacedBy: string | null;
  replaces: string | null;
  expiresAt: number | null;
  /** Highest book `seq` applied to this record (informational: events may arrive out of order). */
  lastSeq: number;
}

export interface NewOrderInput {
  id: string;
  clientOrderId: string;
  account: string;
  symbol: string;
  side: Side;
  type: OrderType;
  tif: TimeInForce;
  qtyLots: number;
  notionalMicros?: number | null;
  limitTicks?: number | null;
  stopTicks?: number | null;
  expiresAt?: number | null;
  replaces?: string | null;
  now: number;
}

export function newOrderRecord(input: NewOrderInput): OrderRecord {
  return {
    id: input.id,
    clientOrderId: input.clientOrderId,
    account: input.account,
    symbol: input.symbol,
    side: input.side,
    type: input.type,
    tif: input.tif,
    qtyLots: input.qtyLots,
    notionalMicros: input.notionalMicros ?? null,
    limitTicks: input.limitTicks ?? null,
    stopTicks: input.stopTicks ?? null,
    filledQtyLots: 0,
    filledValue: 0,
    status: "pending_new",
    reason: null,
    createdAt: input.now,
    updatedAt: input.now,
    submittedAt: input.now,
    filledAt: null,
    canceledAt: null,
    expiredAt: null,
    failedAt: null,
    replacedAt: null,
    replacedBy: null,
    replaces: input.replaces ?? null,
    expiresAt: input.expiresAt ?? null,
    lastSeq: 0,
  };
}

/** What one book event did to one order of the account. */
export interface OrderUpdate {
  event: TradeUpdateEventName;
  orderId: string;
  at: number;
  /** Fills only: ticks and lots of this execution, and its book-wide fill id. */
  priceTicks?: number;
  qtyLots?: number;
  fillId?: number;
  liquidity?: "maker" | "taker";
}

export interface ApplyResult {
  /** The record after the event (the same object when nothing changed). */
  order: OrderRecord;
  update: OrderUpdate | null;
}

/**
 * Which orders of `account` an engine event concerns. A fill concerns the account's own side (the engine
 * prevents self-trades, so never both); a replace concerns the old order and the new one.
 */
export function orderIdsForAccount(event: EngineEvent, account: string): string[] {
  switch (event.type) {
    case "fill":
      if (event.takerAccount === account) return [event.takerOrderId];
      if (event.makerAccount === account) return [event.makerOrderId];
      return [];
    case "accepted":
    case "canceled":
    case "expired":
    case "triggered":
      return event.account === account ? [event.orderId] : [];
    case "replaced":
      return event.account === account ? [event.orderId, event.newOrderId] : [];
    case "rejected": {
      if (event.account !== account) return [];
      const ids: string[] = [];
      if (event.orderId) ids.push(event.orderId);
      if (event.newOrderId) ids.push(event.newOrderId);
      return ids;
    }
    default:
      return [];
  }
}

const TERMINAL: ReadonlySet<OrderStatus> = new Set(["filled", "canceled", "expired", "replaced", "rejected"]);

/**
 * Apply one engine event to the record of an order it concerns.
 *
 * Events of one order can reach its owner in a different order than the book produced them (the reply to
 * one request and the outbox delivery of a later command race), so the result does not depend on arrival
 * order: fills add up, a terminal status (canceled, expired, replaced) stays once reached, and `filled`
 * follows from the quantities. Dedupe of redelivered events is the caller's job (by event id).
 */
export function applyEngineEvent(order: OrderRecord, event: EngineEvent): ApplyResult {
  const at = event.ts;
  const next: OrderRecord = {
    ...order,
    lastSeq: Math.max(order.lastSeq, event.seq),
    updatedAt: Math.max(order.updatedAt, at),
  };
  switch (event.type) {
    case "accepted":
      if (order.status !== "pending_new") return { order: next, update: null };
      next.status = "new";
      return { order: next, update: { event: "new", orderId: order.id, at } };
    case "rejected":
      if (event.command === "replace" && event.newOrderId === order.id) {
        // The replacement never came to life; the order it was to replace stays as it was.
        next.status = "rejected";
        next.reason = event.reason;
        next.failedAt = at;
        return { order: next, update: null };
      }
      if (event.command !== "place" || event.orderId !== order.id) {
        // A rejected cancel / replace leaves the existing order as it was.
        return { order: next, update: null };
      }
      next.status = "rejected";
      next.reason = event.reason;
      next.failedAt = at;
      return { order: next, update: { event: "rejected", orderId: order.id, at } };
    case "fill": {
      const mine =
        event.takerOrderId === order.id ? "taker" : event.makerOrderId === order.id ? "maker" : null;
      if (mine === null) return { order, update: null };
      next.filledQtyLots = order.filledQtyLots + event.qty;
      next.filledValue = order.filledValue + event.price * event.qty;
      const complete = next.filledQtyLots >= order.qtyLots;
      if (complete) {
        next.status = "filled";
        next.filledAt = at;
      } else if (!TERMINAL.has(order.status)) {
        next.status = "partially_filled";
      }
      return {
        order: next,
        update: {
          event: complete ? "fill" : "partial_fill",
          orderId: order.id,
          at,
          priceTicks: event.price,
          qtyLots: event.qty,
          fillId: event.fillId,
          liquidity: mine,
        },
      };
    }
    case "canceled":
      if (order.status !== "filled") next.status = "canceled";
      next.reason = event.reason;
      next.canceledAt = at;
      return { order: next, update: { event: "canceled", orderId: order.id, at } };
    case "expired":
      if (order.status !== "filled") next.status = "expired";
      next.expiredAt = at;
      return { order: next, update: { event: "expired", orderId: order.id, at } };
    case "replaced":
      if (event.newOrderId === order.id) {
        // The new order of a replace is live from here on; the trade update is the old order's. Its
        // quantity is the book's: a replace without a quantity takes over what the old order had left
        // when the book processed it, after fills that were still on their way here.
        if (next.status === "pending_new") next.status = "new";
        next.qtyLots = event.qty;
        return { order: next, update: null };
      }
      if (order.status !== "filled") next.status = "replaced";
      next.replacedAt = at;
      next.replacedBy = event.newOrderId;
      return { order: next, update: { event: "replaced", orderId: order.id, at } };
    case "triggered":
      // Alpaca has no trade update for a stop being triggered; the order simply starts to fill.
      return { order: next, update: null };
    default:
      return { order, update: null };
  }
}

export const isOpen = (order: Pick<OrderRecord, "status">): boolean => OPEN_STATUSES.has(order.status);

/** Quantity still working in the book, in lots. */
export function leavesQty(order: OrderRecord): number {
  return isOpen(order) ? order.qtyLots - order.filledQtyLots : 0;
}
