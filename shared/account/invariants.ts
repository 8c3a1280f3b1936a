/**
 * The account's invariants, checked from scratch. Tests run this after every operation; `fromSnapshot`
 * runs it on every restore; the DO or a reconciliation job may run it too (it is O(orders + positions)).
 */
import { orderReservation, remainingLots } from "./account.ts";
import type { Account } from "./types.ts";

export type InvariantResult = { ok: true } | { ok: false; problems: string[] };

const safe = (n: number) => Number.isSafeInteger(n) && !Object.is(n, -0);

/**
 * Check every invariant of the model:
 * - ledger: starting cash + realized PnL − fees = cash + Σ cost basis of the positions, exactly;
 * - each order's reservation equals the one recomputed from its remaining lots (never negative, 0 for
 *   sells), and the account's reserved cash is their sum, so buying power = cash − reserved cash;
 * - each position is long with a positive basis, and holds exactly the remaining lots of its open sells
 *   (0 ≤ held ≤ qty: no oversell);
 * - orders are consistent (0 ≤ filled ≤ final ≤ ordered, something remaining, unique fill ids) and the
 *   client-order-id and finished-order indexes agree with them;
 * - every amount is a safe integer.
 */
export function checkInvariants(account: Account): InvariantResult {
  const problems: string[] = [];
  const amounts: [string, number][] = [
    ["startingCashMicros", account.startingCashMicros],
    ["cashMicros", account.cashMicros],
    ["realizedPlMicros", account.realizedPlMicros],
    ["feesMicros", account.feesMicros],
    ["reservedCashMicros", account.reservedCashMicros],
    ["lastEquityMicros", account.lastEquityMicros],
    ["epoch", account.epoch],
  ];
  for (const [name, value] of amounts) if (!safe(value)) problems.push(`${name} is not a safe integer`);
  if (account.feesMicros < 0) problems.push("fees are negative");
  if (account.reservedCashMicros < 0) problems.push("reserved cash is negative");

  let basis = 0n;
  const held = new Map<string, number>();
  for (const [symbol, position] of account.positions) {
    if (position.symbol !== symbol) problems.push(`position ${symbol} is filed under the wrong symbol`);
    if (!safe(position.qtyLots) || position.qtyLots <= 0)
      problems.push(`position ${symbol}: qty must be > 0`);
    if (!safe(position.costBasisMicros) || position.costBasisMicros <= 0) {
      problems.push(`position ${symbol}: cost basis must be > 0`);
    }
    if (!safe(position.markPriceTicks) || position.markPriceTicks < 1)
      problems.push(`position ${symbol}: bad mark`);
    basis += BigInt(position.costBasisMicros);
    held.set(symbol, 0);
  }
  const ledgerLeft =
    BigInt(account.startingCashMicros) + BigInt(account.realizedPlMicros) - BigInt(account.feesMicros);
  const ledgerRight = BigInt(account.cashMicros) + basis;
  if (ledgerLeft !== ledgerRight) {
    problems.push(`ledger: starting + realized − fees = ${ledgerLeft} ≠ cash + basis = ${ledgerRight}`);
  }

  let reserved = 0n;
  let clientIds = 0;
  for (const [orderId, order] of account.orders) {
    const where = `order ${orderId}`;
    if (order.orderId !== orderId) problems.push(`${where} is filed under the wrong id`);
    const final = order.finalFilledLots ?? order.qtyLots;
    if (!(order.filledLots >= 0 && order.filledLots <= final && final <= order.qtyLots)) {
      problems.push(
        `${where}: filled ${order.filledLots}, final ${order.finalFilledLots}, qty ${order.qtyLots}`,
      );
    }
    if (remainingLots(order) <= 0) problems.push(`${where}: nothing remaining but still open`);
    if (new Set(order.fillIds).size !== order.fillIds.length) problems.push(`${where}: repeated fill id`);
    if (order.fillIds.length > order.filledLots) problems.push(`${where}: more fills than lots`);
    if (!safe(order.reservedCashMicros) || order.reservedCashMicros < 0)
      problems.push(`${where}: bad reservation`);
    try {
      if (order.reservedCashMicros !== orderReservation(order)) {
        problems.push(`${where}: reservation ${order.reservedCashMicros} ≠ ${orderReservation(order)}`);
      }
    } catch {
      problems.push(`${where}: reservation out of range`);
    }
    if (order.fees !== null && (order.feeCredit < 0n || order.feeCredit >= order.fees.denominator)) {
      problems.push(`${where}: fee credit out of range`);
    }
    if (order.fees === null && (order.feeCredit !== 0n || order.feesMicros !== 0)) {
      problems.push(`${where}: fees without a fee schedule`);
    }
    reserved += BigInt(order.reservedCashMicros);
    if (order.side === "sell") {
      const h = held.get(order.symbol);
      if (h === undefined) problems.push(`${where}: sell order without a position`);
      else held.set(order.symbol, h + remainingLots(order));
    }
    if (order.clientOrderId !== null) {
      clientIds++;
      if (account.clientOrderIds.get(order.clientOrderId) !== orderId) {
        problems.push(`${where}: client order id not indexed`);
      }
    }
    if (account.completed.has(orderId)) problems.push(`${where}: both open and finished`);
  }
  if (clientIds !== account.clientOrderIds.size) problems.push("client order id index has stale entries");
  if (reserved !== BigInt(account.reservedCashMicros)) {
    problems.push(`reserved cash ${account.reservedCashMicros} ≠ Σ order reservations ${reserved}`);
  }
  for (const [symbol, position] of account.positions) {
    const h = held.get(symbol) ?? 0;
    if (position.heldLots !== h)
      problems.push(`position ${symbol}: held ${position.heldLots} ≠ open sells ${h}`);
    if (position.heldLots < 0 || position.heldLots > position.qtyLots) {
      problems.push(`position ${symbol}: held ${position.heldLots} outside [0, ${position.qtyLots}]`);
    }
  }
  if (account.completed.size > account.config.completedOrderMemory)
    problems.push("finished-order memory too big");
  for (const [clientOrderId, orderId] of account.completedClientOrderIds) {
    if (account.completed.get(orderId)?.clientOrderId !== clientOrderId) {
      problems.push(`finished client order id ${clientOrderId} not matching its order`);
    }
  }
  return problems.length === 0 ? { ok: true } : { ok: false, problems };
}
