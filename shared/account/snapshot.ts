/**
 * JSON-safe snapshot of an account: what the UserSession DO must persist (one JSON document, e.g. one
 * SQLite row). Derived figures (reservations, held lots, indexes) are not stored: `fromSnapshot` recomputes
 * them and checks every invariant, so a corrupt snapshot is refused instead of loaded.
 *
 * Round trip: `fromSnapshot(toSnapshot(a))` equals `a`, and `toSnapshot(fromSnapshot(s))` equals `s` for
 * every snapshot `toSnapshot` produced.
 */
import { z } from "zod";
import { configProblem, orderReservation, remainingLots } from "./account.ts";
import { checkInvariants } from "./invariants.ts";
import type { Account, AccountConfig, AccountResult, CompletedOrder, Order, Position } from "./types.ts";
import { feeRatesOf, symbolUnitsOf } from "./units.ts";

export const ACCOUNT_SNAPSHOT_VERSION = 1;

export interface PositionSnapshot {
  symbol: string;
  tickSize: string;
  lotSize: string;
  qtyLots: number;
  costBasisMicros: number;
  markPriceTicks: number;
}

export interface OrderSnapshot {
  orderId: string;
  clientOrderId: string | null;
  symbol: string;
  side: "buy" | "sell";
  type: "market" | "limit" | "stop" | "stop_limit";
  qtyLots: number;
  limitPriceTicks: number | null;
  stopPriceTicks: number | null;
  reservePriceTicks: number;
  tickSize: string;
  lotSize: string;
  /** Canonical fee schedule the order was accepted under; null = no fees. */
  fees: { notionalBps: string; perUnit: string } | null;
  filledLots: number;
  finalFilledLots: number | null;
  /** The order's fill-dedup set. */
  fillIds: string[];
  feesMicros: number;
  /** Fee rounding credit, a non-negative integer as a decimal string (it may exceed 2^53). */
  feeCredit: string;
}

export interface AccountSnapshot {
  version: 1;
  config: AccountConfig;
  epoch: number;
  startingCashMicros: number;
  cashMicros: number;
  realizedPlMicros: number;
  feesMicros: number;
  lastEquityMicros: number;
  positions: PositionSnapshot[];
  orders: OrderSnapshot[];
  /** Finished orders remembered for dedup, oldest first: [orderId, clientOrderId, end]. */
  completed: [string, string | null, "completed" | "reset"][];
}

/** The JSON-safe state of an account. */
export function toSnapshot(account: Account): AccountSnapshot {
  return {
    version: ACCOUNT_SNAPSHOT_VERSION,
    config: { ...account.config },
    epoch: account.epoch,
    startingCashMicros: account.startingCashMicros,
    cashMicros: account.cashMicros,
    realizedPlMicros: account.realizedPlMicros,
    feesMicros: account.feesMicros,
    lastEquityMicros: account.lastEquityMicros,
    positions: [...account.positions.values()].map((p) => ({
      symbol: p.symbol,
      tickSize: p.units.tickSize,
      lotSize: p.units.lotSize,
      qtyLots: p.qtyLots,
      costBasisMicros: p.costBasisMicros,
      markPriceTicks: p.markPriceTicks,
    })),
    orders: [...account.orders.values()].map((o) => ({
      orderId: o.orderId,
      clientOrderId: o.clientOrderId,
      symbol: o.symbol,
      side: o.side,
      type: o.type,
      qtyLots: o.qtyLots,
      limitPriceTicks: o.limitPriceTicks,
      stopPriceTicks: o.stopPriceTicks,
      reservePriceTicks: o.reservePriceTicks,
      tickSize: o.units.tickSize,
      lotSize: o.units.lotSize,
      fees: o.fees === null ? null : { notionalBps: o.fees.notionalBps, perUnit: o.fees.perUnit },
      filledLots: o.filledLots,
      finalFilledLots: o.finalFilledLots,
      fillIds: [...o.fillIds],
      feesMicros: o.feesMicros,
      feeCredit: o.feeCredit.toString(),
    })),
    completed: [...account.completed].map(([id, c]) => [id, c.clientOrderId, c.end]),
  };
}

const int = z.number().int().refine(Number.isSafeInteger, "not a safe integer");
const count = int.refine((n) => n >= 0, "negative");

const positionSchema = z.object({
  symbol: z.string().min(1),
  tickSize: z.string(),
  lotSize: z.string(),
  qtyLots: count,
  costBasisMicros: int,
  markPriceTicks: count,
});

const orderSchema = z.object({
  orderId: z.string().min(1),
  clientOrderId: z.string().min(1).nullable(),
  symbol: z.string().min(1),
  side: z.enum(["buy", "sell"]),
  type: z.enum(["market", "limit", "stop", "stop_limit"]),
  qtyLots: count,
  limitPriceTicks: count.nullable(),
  stopPriceTicks: count.nullable(),
  reservePriceTicks: count,
  tickSize: z.string(),
  lotSize: z.string(),
  fees: z.object({ notionalBps: z.string(), perUnit: z.string() }).nullable(),
  filledLots: count,
  finalFilledLots: count.nullable(),
  fillIds: z.array(z.string().min(1)),
  feesMicros: count,
  feeCredit: z.string().regex(/^(0|[1-9][0-9]*)$/),
});

const snapshotSchema = z.object({
  version: z.literal(ACCOUNT_SNAPSHOT_VERSION),
  config: z.object({
    accountId: z.string(),
    startingCashMicros: int,
    maxOrderNotionalMicros: int.nullable(),
    maxPositionNotionalMicros: int.nullable(),
    maxOpenOrders: int,
    marketCollarBps: int,
    completedOrderMemory: int,
  }),
  epoch: count,
  startingCashMicros: count,
  cashMicros: int,
  realizedPlMicros: int,
  feesMicros: count,
  lastEquityMicros: int,
  positions: z.array(positionSchema),
  orders: z.array(orderSchema),
  completed: z.array(
    z.tuple([z.string().min(1), z.string().min(1).nullable(), z.enum(["completed", "reset"])]),
  ),
});

function invalid(message: string): AccountResult {
  return { ok: false, code: "invalid_snapshot", message };
}

/** Rebuild an account from a snapshot (e.g. parsed JSON), refusing anything inconsistent. */
export function fromSnapshot(input: unknown): AccountResult {
  const parsed = snapshotSchema.safeParse(input);
  if (!parsed.success)
    return invalid(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  const s = parsed.data;
  const config: AccountConfig = { ...s.config };
  const problem = configProblem(config);
  if (problem !== null) return invalid(`config: ${problem}`);

  const positions = new Map<string, Position>();
  for (const p of s.positions) {
    const units = symbolUnitsOf(p.tickSize, p.lotSize);
    if (!units.ok) return invalid(`position ${p.symbol}: ${units.problem}`);
    if (positions.has(p.symbol)) return invalid(`position ${p.symbol} appears twice`);
    positions.set(p.symbol, {
      symbol: p.symbol,
      units: units.value,
      qtyLots: p.qtyLots,
      costBasisMicros: p.costBasisMicros,
      heldLots: 0,
      markPriceTicks: p.markPriceTicks,
    });
  }

  const orders = new Map<string, Order>();
  const clientOrderIds = new Map<string, string>();
  let reserved = 0;
  for (const o of s.orders) {
    const units = symbolUnitsOf(o.tickSize, o.lotSize);
    if (!units.ok) return invalid(`order ${o.orderId}: ${units.problem}`);
    const fees = feeRatesOf(o.fees ?? undefined, units.value.lot);
    if (!fees.ok) return invalid(`order ${o.orderId}: ${fees.problem}`);
    if (orders.has(o.orderId)) return invalid(`order ${o.orderId} appears twice`);
    const base: Order = {
      orderId: o.orderId,
      clientOrderId: o.clientOrderId,
      symbol: o.symbol,
      side: o.side,
      type: o.type,
      qtyLots: o.qtyLots,
      limitPriceTicks: o.limitPriceTicks,
      stopPriceTicks: o.stopPriceTicks,
      reservePriceTicks: o.reservePriceTicks,
      units: units.value,
      fees: fees.value,
      filledLots: o.filledLots,
      finalFilledLots: o.finalFilledLots,
      fillIds: [...o.fillIds],
      feesMicros: o.feesMicros,
      feeCredit: BigInt(o.feeCredit),
      reservedCashMicros: 0,
    };
    let order: Order;
    try {
      order = { ...base, reservedCashMicros: orderReservation(base) };
    } catch {
      return invalid(`order ${o.orderId}: reservation out of range`);
    }
    orders.set(o.orderId, order);
    reserved += order.reservedCashMicros;
    if (!Number.isSafeInteger(reserved)) return invalid("reserved cash out of range");
    if (order.clientOrderId !== null) {
      if (clientOrderIds.has(order.clientOrderId))
        return invalid(`client order id ${order.clientOrderId} twice`);
      clientOrderIds.set(order.clientOrderId, order.orderId);
    }
    const position = positions.get(order.symbol);
    if (order.side === "sell" && position !== undefined) {
      positions.set(order.symbol, { ...position, heldLots: position.heldLots + remainingLots(order) });
    }
  }

  const completed = new Map<string, CompletedOrder>();
  const completedClientOrderIds = new Map<string, string>();
  for (const [orderId, clientOrderId, end] of s.completed) {
    completed.set(orderId, { clientOrderId, end });
    if (clientOrderId !== null) completedClientOrderIds.set(clientOrderId, orderId);
  }

  const account: Account = {
    config,
    epoch: s.epoch,
    startingCashMicros: s.startingCashMicros,
    cashMicros: s.cashMicros,
    realizedPlMicros: s.realizedPlMicros,
    feesMicros: s.feesMicros,
    reservedCashMicros: reserved,
    lastEquityMicros: s.lastEquityMicros,
    positions,
    orders,
    clientOrderIds,
    completed,
    completedClientOrderIds,
  };
  const check = checkInvariants(account);
  if (!check.ok) return invalid(check.problems.join("; "));
  return { ok: true, account };
}
