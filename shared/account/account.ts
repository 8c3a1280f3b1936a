/**
 * The account model: pure operations on an immutable `Account` value. No clocks, no I/O, no exceptions
 * for bad input: every operation returns `{ ok: true, ... }` or `{ ok: false, code, message }`.
 * See `docs/account-model.md` for the rules (units, ledger invariant, reservations, average cost).
 */
import { MAX_PRICE_TICKS, MAX_QTY_LOTS } from "../engine/limits.ts";
import { applyTrade } from "./position.ts";
import type {
  Account,
  AccountConfig,
  AccountConfigInput,
  AccountResult,
  ApplyFillResult,
  CloseResult,
  CompletedOrder,
  Failure,
  Fill,
  MarketContext,
  Order,
  OrderRequest,
  Position,
  ReserveRejectCode,
  ReserveResult,
} from "./types.ts";
import {
  add,
  chargeFee,
  type FeeRates,
  feeBound,
  feeNumerator,
  feeRatesOf,
  notionalOf,
  OverflowError,
  type SymbolUnits,
  sameUnits,
  sub,
  symbolUnitsOf,
} from "./units.ts";

/** 100,000.00 USD in micro-USD. */
export const DEFAULT_STARTING_CASH_MICROS = 100_000_000_000;

export const DEFAULT_ACCOUNT_CONFIG: Omit<AccountConfig, "accountId"> = {
  startingCashMicros: DEFAULT_STARTING_CASH_MICROS,
  maxOrderNotionalMicros: null,
  maxPositionNotionalMicros: null,
  maxOpenOrders: 500,
  marketCollarBps: 500,
  completedOrderMemory: 1000,
};

/** Longest order id / client order id accepted (Alpaca's client_order_id limit). */
export const MAX_ID_LENGTH = 128;

const ORDER_TYPES = new Set(["market", "limit", "stop", "stop_limit"]);

function fail<C extends string>(code: C, message: string): Failure<C> {
  return { ok: false, code, message };
}

function overflow(): Failure<"overflow"> {
  return fail("overflow", "an amount would leave the safe integer range (±9,007,199,254.740991 USD)");
}

/** Run `body`, turning the internal OverflowError into an `overflow` failure. */
function guarded<T>(body: () => T): T | Failure<"overflow"> {
  try {
    return body();
  } catch (e: unknown) {
    if (e instanceof OverflowError) return overflow();
    throw e;
  }
}

function isId(v: unknown): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= MAX_ID_LENGTH;
}

function isPrice(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= MAX_PRICE_TICKS;
}

function isLots(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= MAX_QTY_LOTS;
}

function isAmount(v: unknown, min: number): v is number {
  return Number.isSafeInteger(v) && (v as number) >= min;
}

// ---------------------------------------------------------------------------------------------------
// Creation and reset
// ---------------------------------------------------------------------------------------------------

/** Check a config (every field present). Returns a human-readable problem, or null when valid. */
export function configProblem(config: AccountConfig): string | null {
  if (!isId(config.accountId)) return `accountId must be a string of 1–${MAX_ID_LENGTH} characters`;
  if (!isAmount(config.startingCashMicros, 0)) return "startingCashMicros must be a safe integer ≥ 0";
  for (const key of ["maxOrderNotionalMicros", "maxPositionNotionalMicros"] as const) {
    const v = config[key];
    if (v !== null && !isAmount(v, 1)) return `${key} must be null or a safe integer ≥ 1`;
  }
  if (
    !Number.isSafeInteger(config.maxOpenOrders) ||
    config.maxOpenOrders < 1 ||
    config.maxOpenOrders > 100_000
  ) {
    return "maxOpenOrders must be an integer in [1, 100000]";
  }
  if (
    !Number.isSafeInteger(config.marketCollarBps) ||
    config.marketCollarBps < 0 ||
    config.marketCollarBps > 10_000
  ) {
    return "marketCollarBps must be an integer in [0, 10000]";
  }
  if (
    !Number.isSafeInteger(config.completedOrderMemory) ||
    config.completedOrderMemory < 0 ||
    config.completedOrderMemory > 1_000_000
  ) {
    return "completedOrderMemory must be an integer in [0, 1000000]";
  }
  return null;
}

function freshAccount(
  config: AccountConfig,
  startingCashMicros: number,
  epoch: number,
  completed: ReadonlyMap<string, CompletedOrder>,
  completedClientOrderIds: ReadonlyMap<string, string>,
): Account {
  return {
    config,
    epoch,
    startingCashMicros,
    cashMicros: startingCashMicros,
    realizedPlMicros: 0,
    feesMicros: 0,
    reservedCashMicros: 0,
    lastEquityMicros: startingCashMicros,
    positions: new Map(),
    orders: new Map(),
    clientOrderIds: new Map(),
    completed,
    completedClientOrderIds,
  };
}

/**
 * A new account holding `startingCashMicros` (default 100,000 USD) of cash and nothing else.
 *
 * @example
 * ```ts
 * const created = createAccount({ accountId: "user-1", startingCashMicros: 50_000 * 1_000_000 });
 * if (created.ok) created.account.cashMicros; // 50_000_000_000 (50,000 USD)
 * ```
 */
export function createAccount(input: AccountConfigInput): AccountResult {
  const config: AccountConfig = {
    accountId: input.accountId,
    startingCashMicros: input.startingCashMicros ?? DEFAULT_ACCOUNT_CONFIG.startingCashMicros,
    maxOrderNotionalMicros: input.maxOrderNotionalMicros ?? DEFAULT_ACCOUNT_CONFIG.maxOrderNotionalMicros,
    maxPositionNotionalMicros:
      input.maxPositionNotionalMicros ?? DEFAULT_ACCOUNT_CONFIG.maxPositionNotionalMicros,
    maxOpenOrders: input.maxOpenOrders ?? DEFAULT_ACCOUNT_CONFIG.maxOpenOrders,
    marketCollarBps: input.marketCollarBps ?? DEFAULT_ACCOUNT_CONFIG.marketCollarBps,
    completedOrderMemory: input.completedOrderMemory ?? DEFAULT_ACCOUNT_CONFIG.completedOrderMemory,
  };
  const problem = configProblem(config);
  if (problem !== null) return fail("invalid_config", problem);
  return { ok: true, account: freshAccount(config, config.startingCashMicros, 0, new Map(), new Map()) };
}

/**
 * Restore the starting state: cash = starting cash (the config's, or `startingCashMicros` if given, which
 * then becomes the config's), no positions, no orders, zero realized PnL and fees, epoch + 1.
 *
 * Open orders are dropped: the caller must cancel them at their books first. Their ids are remembered
 * (`end: "reset"`), so fills that still arrive for them are ignored (`reason: "order_reset"`).
 */
export function reset(account: Account, options?: { startingCashMicros?: number }): AccountResult {
  const startingCashMicros = options?.startingCashMicros ?? account.config.startingCashMicros;
  const config = { ...account.config, startingCashMicros };
  const problem = configProblem(config);
  if (problem !== null) return fail("invalid_config", problem);
  let memory: Memory = { completed: account.completed, clientIds: account.completedClientOrderIds };
  for (const order of account.orders.values()) {
    memory = remember(memory, order, "reset", config.completedOrderMemory);
  }
  return {
    ok: true,
    account: freshAccount(config, startingCashMicros, account.epoch + 1, memory.completed, memory.clientIds),
  };
}

interface Memory {
  completed: ReadonlyMap<string, CompletedOrder>;
  clientIds: ReadonlyMap<string, string>;
}

/** Add a finished order to the bounded memory, evicting the oldest entries. */
function remember(memory: Memory, order: Order, end: CompletedOrder["end"], limit: number): Memory {
  if (limit === 0) return memory;
  const completed = new Map(memory.completed);
  const clientIds = new Map(memory.clientIds);
  completed.delete(order.orderId);
  completed.set(order.orderId, { clientOrderId: order.clientOrderId, end });
  if (order.clientOrderId !== null) clientIds.set(order.clientOrderId, order.orderId);
  for (const [oldId, old] of completed) {
    if (completed.size <= limit) break;
    completed.delete(oldId);
    if (old.clientOrderId !== null && clientIds.get(old.clientOrderId) === oldId) {
      clientIds.delete(old.clientOrderId);
    }
  }
  return { completed, clientIds };
}

// ---------------------------------------------------------------------------------------------------
// Reservations
// ---------------------------------------------------------------------------------------------------

/** Lots the order may still receive: ordered (or finally filled, once closed) minus applied. */
export function remainingLots(order: Order): number {
  return (order.finalFilledLots ?? order.qtyLots) - order.filledLots;
}

/**
 * Cash a buy order must keep reserved: the notional of its remaining lots at its reservation price plus
 * the largest fee those lots can still be charged. 0 for sells and for finished orders.
 */
export function reservationFor(
  side: Order["side"],
  units: SymbolUnits,
  fees: FeeRates | null,
  priceTicks: number,
  lots: number,
  feeCredit: bigint,
): number {
  if (side === "sell" || lots === 0) return 0;
  const notional = notionalOf(units, priceTicks, lots);
  if (fees === null) return notional;
  return add(notional, feeBound(fees, feeNumerator(fees, notional, lots), feeCredit));
}

/** Cash the order must keep reserved now. @internal */
export function orderReservation(order: Order): number {
  return reservationFor(
    order.side,
    order.units,
    order.fees,
    order.reservePriceTicks,
    remainingLots(order),
    order.feeCredit,
  );
}

/** Cash available for new buys: cash − cash reserved by open buy orders. */
export function buyingPowerMicros(account: Account): number {
  return account.cashMicros - account.reservedCashMicros;
}

/** Lots of `symbol` that new sell orders may still take: position − held by open sells. */
export function qtyAvailableLots(account: Account, symbol: string): number {
  const position = account.positions.get(symbol);
  return position === undefined ? 0 : position.qtyLots - position.heldLots;
}

function countOpenOrders(account: Account): number {
  let n = 0;
  for (const order of account.orders.values()) if (order.finalFilledLots === null) n++;
  return n;
}

type Reject = Failure<ReserveRejectCode> & { existingOrderId?: string };

function reject(code: ReserveRejectCode, message: string): Reject {
  return fail(code, message);
}

function rulesProblem(market: MarketContext): string | null {
  const rules = market?.rules;
  if (typeof rules !== "object" || rules === null) return "rules must be an object";
  if (!isId(rules.symbol)) return "symbol must be a non-empty string";
  const { minQtyLots, maxQtyLots, minNotionalTicksLots } = rules;
  if (!isLots(minQtyLots)) return "minQtyLots must be an integer ≥ 1";
  if (!isLots(maxQtyLots) || maxQtyLots < minQtyLots) return "maxQtyLots must be an integer ≥ minQtyLots";
  if (!isAmount(minNotionalTicksLots, 0)) return "minNotionalTicksLots must be an integer ≥ 0";
  return null;
}

/**
 * Check a new order against the symbol's rules and the account's limits and, if it passes, reserve for it:
 * a buy reserves cash (notional at its limit or protective price, plus the fee bound), a sell reserves lots
 * of the position. The caller then submits the order to its book and reports the outcome with
 * `applyFill`, `applyOrderClosed` or `releaseReservation`.
 *
 * Checks, in order (first failure wins): request shape and symbol rules, duplicate order id / client order
 * id, units unchanged for the symbol, reference price for market orders, quantity (after notional sizing)
 * within the symbol's min / max, min notional, max open orders, max order notional, max position notional
 * (buys), buying power (buys) or position available (sells).
 *
 * @example
 * ```ts
 * const r = reserveForOrder(account, { orderId: "o1", symbol: "AAPL", side: "buy", type: "limit",
 *   qtyLots: 10, limitPriceTicks: 10_000 }, { rules: aaplRules });
 * if (!r.ok) console.log(r.code); // e.g. "insufficient_buying_power"
 * ```
 */
export function reserveForOrder(
  account: Account,
  request: OrderRequest,
  market: MarketContext,
): ReserveResult {
  const result = guarded(() => reserveUnguarded(account, request, market));
  return result as ReserveResult;
}

function reserveUnguarded(account: Account, request: OrderRequest, market: MarketContext): ReserveResult {
  if (typeof request !== "object" || request === null)
    return reject("invalid_order", "order must be an object");
  const { orderId, side, type } = request;
  const clientOrderId = request.clientOrderId ?? null;
  if (!isId(orderId))
    return reject("invalid_order", `orderId must be a string of 1–${MAX_ID_LENGTH} characters`);
  if (clientOrderId !== null && !isId(clientOrderId)) {
    return reject("invalid_order", `clientOrderId must be a string of 1–${MAX_ID_LENGTH} characters`);
  }
  if (side !== "buy" && side !== "sell") return reject("invalid_order", "side must be buy or sell");
  if (!ORDER_TYPES.has(type))
    return reject("invalid_order", "type must be market, limit, stop or stop_limit");

  const problem = rulesProblem(market);
  if (problem !== null) return reject("invalid_symbol_rules", problem);
  const rules = market.rules;
  const unitsResult = symbolUnitsOf(rules.tickSize, rules.lotSize);
  if (!unitsResult.ok) return reject("invalid_symbol_rules", unitsResult.problem);
  const units = unitsResult.value;
  const feesResult = feeRatesOf(rules.fees, units.lot);
  if (!feesResult.ok) return reject("invalid_symbol_rules", feesResult.problem);
  const fees = feesResult.value;
  if (request.symbol !== rules.symbol) {
    return reject(
      "symbol_mismatch",
      `order symbol ${String(request.symbol)} does not match the rules' symbol`,
    );
  }
  const symbol = rules.symbol;

  const wantsLimit = type === "limit" || type === "stop_limit";
  const wantsStop = type === "stop" || type === "stop_limit";
  const limit = request.limitPriceTicks;
  const stop = request.stopPriceTicks;
  if (wantsLimit !== (limit !== undefined)) {
    return reject(
      "invalid_order",
      wantsLimit ? "limitPriceTicks is required" : "limitPriceTicks is not allowed",
    );
  }
  if (wantsStop !== (stop !== undefined)) {
    return reject(
      "invalid_order",
      wantsStop ? "stopPriceTicks is required" : "stopPriceTicks is not allowed",
    );
  }
  if (limit !== undefined && !isPrice(limit)) return reject("invalid_price", "limitPriceTicks out of range");
  if (stop !== undefined && !isPrice(stop)) return reject("invalid_price", "stopPriceTicks out of range");
  const reference = market.referencePriceTicks ?? null;
  if (reference !== null && !isPrice(reference)) {
    return reject("invalid_price", "referencePriceTicks out of range");
  }
  const hasQty = request.qtyLots !== undefined;
  const hasNotional = request.notionalMicros !== undefined;
  if (hasQty === hasNotional)
    return reject("invalid_order", "give exactly one of qtyLots and notionalMicros");
  if (hasQty && !isLots(request.qtyLots)) return reject("invalid_qty", "qtyLots must be an integer ≥ 1");
  if (hasNotional && !isAmount(request.notionalMicros, 1)) {
    return reject("invalid_notional", "notionalMicros must be a safe integer ≥ 1");
  }

  if (account.orders.has(orderId) || account.completed.has(orderId)) {
    return reject("duplicate_order_id", `order id ${orderId} is already in use`);
  }
  if (clientOrderId !== null) {
    const existing =
      account.clientOrderIds.get(clientOrderId) ?? account.completedClientOrderIds.get(clientOrderId);
    if (existing !== undefined) {
      return {
        ...reject("duplicate_client_order_id", `client order id ${clientOrderId} is already in use`),
        existingOrderId: existing,
      };
    }
  }
  const position = account.positions.get(symbol);
  if (position !== undefined && !sameUnits(position.units, units)) {
    return reject("symbol_rules_changed", `tick or lot size of ${symbol} differs from the open position's`);
  }
  for (const other of account.orders.values()) {
    if (other.symbol === symbol && !sameUnits(other.units, units)) {
      return reject("symbol_rules_changed", `tick or lot size of ${symbol} differs from an open order's`);
    }
  }

  if (type === "market" && reference === null) {
    return reject("no_reference_price", "a market order needs a reference price (best quote or last trade)");
  }
  // The price a notional order is sized at and a sell's notional is measured at.
  const sizingPrice = limit ?? stop ?? reference;
  let qtyLots: number;
  if (hasNotional) {
    if (sizingPrice === null)
      return reject("no_reference_price", "a notional order needs a price to size at");
    const lotValue = notionalOf(units, sizingPrice, 1);
    qtyLots = Math.floor((request.notionalMicros as number) / lotValue);
    if (qtyLots < 1) return reject("qty_below_min", "notional is worth less than one lot");
    if (qtyLots > MAX_QTY_LOTS) return reject("qty_above_max", "notional is worth too many lots");
  } else {
    qtyLots = request.qtyLots as number;
  }
  if (qtyLots < rules.minQtyLots) return reject("qty_below_min", `quantity below ${rules.minQtyLots} lots`);
  if (qtyLots > rules.maxQtyLots) return reject("qty_above_max", `quantity above ${rules.maxQtyLots} lots`);
  if (
    rules.minNotionalTicksLots > 0 &&
    sizingPrice !== null &&
    sizingPrice * qtyLots < rules.minNotionalTicksLots
  ) {
    return reject("min_notional", "order notional below the symbol's minimum");
  }
  if (countOpenOrders(account) >= account.config.maxOpenOrders) {
    return reject("max_open_orders", `at most ${account.config.maxOpenOrders} open orders`);
  }

  // Buys without a limit reserve at a protective price above the stop / reference price.
  let protectivePriceTicks: number | null = null;
  if (side === "buy" && limit === undefined) {
    const base = (stop ?? reference) as number;
    const collared = Math.ceil((base * (10_000 + account.config.marketCollarBps)) / 10_000);
    protectivePriceTicks = Math.min(
      Number.isSafeInteger(collared) ? collared : MAX_PRICE_TICKS,
      MAX_PRICE_TICKS,
    );
  }
  const reservePriceTicks = protectivePriceTicks ?? (sizingPrice as number);
  const notional = notionalOf(units, reservePriceTicks, qtyLots);
  const { maxOrderNotionalMicros, maxPositionNotionalMicros } = account.config;
  if (maxOrderNotionalMicros !== null && notional > maxOrderNotionalMicros) {
    return reject("max_order_notional", "order notional above the account's limit");
  }

  let reservedCashMicros = 0;
  let heldLots = 0;
  if (side === "buy") {
    if (maxPositionNotionalMicros !== null) {
      let lots = BigInt(position?.qtyLots ?? 0) + BigInt(qtyLots);
      for (const other of account.orders.values()) {
        if (other.symbol === symbol && other.side === "buy") lots += BigInt(remainingLots(other));
      }
      const exposure = lots * BigInt(reservePriceTicks) * BigInt(units.microsPerTickLot);
      if (exposure > BigInt(maxPositionNotionalMicros)) {
        return reject("max_position_notional", `position in ${symbol} would exceed the account's limit`);
      }
    }
    reservedCashMicros = reservationFor("buy", units, fees, reservePriceTicks, qtyLots, 0n);
    if (reservedCashMicros > buyingPowerMicros(account)) {
      return reject("insufficient_buying_power", "order cost exceeds buying power");
    }
  } else {
    if (qtyLots > qtyAvailableLots(account, symbol)) {
      return reject("insufficient_position", `sell quantity exceeds the available position in ${symbol}`);
    }
    heldLots = qtyLots;
  }

  const order: Order = {
    orderId,
    clientOrderId,
    symbol,
    side,
    type,
    qtyLots,
    limitPriceTicks: limit ?? null,
    stopPriceTicks: stop ?? null,
    reservePriceTicks,
    units,
    fees,
    filledLots: 0,
    finalFilledLots: null,
    fillIds: [],
    feesMicros: 0,
    feeCredit: 0n,
    reservedCashMicros,
  };
  const orders = new Map(account.orders);
  orders.set(orderId, order);
  let clientOrderIds = account.clientOrderIds;
  if (clientOrderId !== null) {
    const next = new Map(clientOrderIds);
    next.set(clientOrderId, orderId);
    clientOrderIds = next;
  }
  let positions = account.positions;
  if (heldLots > 0 && position !== undefined) {
    const next = new Map(positions);
    next.set(symbol, { ...position, heldLots: position.heldLots + heldLots });
    positions = next;
  }
  return {
    ok: true,
    account: {
      ...account,
      orders,
      clientOrderIds,
      positions,
      reservedCashMicros: add(account.reservedCashMicros, reservedCashMicros),
    },
    order,
    qtyLots,
    protectivePriceTicks,
    reservedCashMicros,
    heldLots,
  };
}

// ---------------------------------------------------------------------------------------------------
// Order lifecycle
// ---------------------------------------------------------------------------------------------------

/**
 * Replace (or finish) one order in the account, keeping the reservation totals, the position's held lots
 * and the client-order-id index in step. A finished order (nothing remaining) is removed and remembered.
 */
function withOrder(
  account: Account,
  before: Order,
  after: Order,
  positions: ReadonlyMap<string, Position>,
): Account {
  const done = remainingLots(after) === 0;
  const orders = new Map(account.orders);
  let { clientOrderIds, completed, completedClientOrderIds } = account;
  if (done) {
    orders.delete(after.orderId);
    if (after.clientOrderId !== null) {
      const next = new Map(clientOrderIds);
      next.delete(after.clientOrderId);
      clientOrderIds = next;
    }
    const memory = remember(
      { completed, clientIds: completedClientOrderIds },
      after,
      "completed",
      account.config.completedOrderMemory,
    );
    completed = memory.completed;
    completedClientOrderIds = memory.clientIds;
  } else {
    orders.set(after.orderId, after);
  }
  return {
    ...account,
    orders,
    positions,
    clientOrderIds,
    completed,
    completedClientOrderIds,
    reservedCashMicros: add(
      sub(account.reservedCashMicros, before.reservedCashMicros),
      after.reservedCashMicros,
    ),
  };
}

/** Release `lots` held by a sell order from its position. */
function releaseHeld(
  positions: ReadonlyMap<string, Position>,
  order: Order,
  lots: number,
): ReadonlyMap<string, Position> {
  if (order.side !== "sell" || lots === 0) return positions;
  const position = positions.get(order.symbol);
  if (position === undefined) return positions;
  const next = new Map(positions);
  next.set(order.symbol, { ...position, heldLots: position.heldLots - lots });
  return next;
}

/**
 * Apply one fill of one of the account's orders: cash, position (average cost), realized PnL, fees, and the
 * order's reservation (recomputed for its remaining lots, so a market buy's collar excess is released as it
 * fills). Idempotent: a fill id already applied to the order returns `applied: false` and the same account.
 *
 * A fill is a fact from the book, so it is applied even if it costs more than was reserved (a buy filled
 * above its reservation price, which the book must not do); it is refused only when it is malformed, its
 * order is unknown, it exceeds the order's remaining quantity (`overfill`), or an amount would overflow.
 */
export function applyFill(account: Account, fill: Fill): ApplyFillResult {
  return guarded(() => applyFillUnguarded(account, fill)) as ApplyFillResult;
}

function applyFillUnguarded(account: Account, fill: Fill): ApplyFillResult {
  if (
    typeof fill !== "object" ||
    fill === null ||
    typeof fill.fillId !== "string" ||
    fill.fillId.length === 0 ||
    typeof fill.orderId !== "string" ||
    !isPrice(fill.priceTicks) ||
    !isLots(fill.qtyLots)
  ) {
    return fail("invalid_fill", "a fill needs a fillId, an orderId, a price in ticks and a quantity in lots");
  }
  const order = account.orders.get(fill.orderId);
  if (order === undefined) {
    const finished = account.completed.get(fill.orderId);
    if (finished !== undefined) {
      return {
        ok: true,
        applied: false,
        account,
        reason: finished.end === "reset" ? "order_reset" : "duplicate",
      };
    }
    return fail("unknown_order", `no open order ${fill.orderId}`);
  }
  if (order.fillIds.includes(fill.fillId)) return { ok: true, applied: false, account, reason: "duplicate" };
  if (fill.qtyLots > remainingLots(order)) {
    return fail(
      "overfill",
      `fill of ${fill.qtyLots} lots exceeds the ${remainingLots(order)} lots remaining`,
    );
  }
  const position = account.positions.get(order.symbol);
  if (order.side === "sell" && (position === undefined || position.qtyLots < fill.qtyLots)) {
    // Unreachable while the invariants hold: a sell holds its lots from reservation to fill.
    return fail("overfill", "sell fill exceeds the position");
  }

  const units = position?.units ?? order.units;
  const trade = applyTrade(
    { qtyLots: position?.qtyLots ?? 0, costBasisMicros: position?.costBasisMicros ?? 0 },
    order.side,
    fill.priceTicks,
    fill.qtyLots,
    units,
  );
  const notionalMicros = Math.abs(trade.cashDeltaMicros);
  let feeMicros = 0;
  let feeCredit = order.feeCredit;
  if (order.fees !== null) {
    const charged = chargeFee(order.fees, feeNumerator(order.fees, notionalMicros, fill.qtyLots), feeCredit);
    feeMicros = charged.feeMicros;
    feeCredit = charged.credit;
  }
  const cashDeltaMicros = sub(trade.cashDeltaMicros, feeMicros);

  const positions = new Map(account.positions);
  if (trade.position.qtyLots === 0) {
    positions.delete(order.symbol);
  } else {
    positions.set(order.symbol, {
      symbol: order.symbol,
      units,
      qtyLots: trade.position.qtyLots,
      costBasisMicros: trade.position.costBasisMicros,
      heldLots: (position?.heldLots ?? 0) - (order.side === "sell" ? fill.qtyLots : 0),
      markPriceTicks: fill.priceTicks,
    });
  }
  const partial: Order = {
    ...order,
    filledLots: order.filledLots + fill.qtyLots,
    fillIds: [...order.fillIds, fill.fillId],
    feesMicros: add(order.feesMicros, feeMicros),
    feeCredit,
  };
  const after: Order = { ...partial, reservedCashMicros: orderReservation(partial) };
  const next = withOrder(
    {
      ...account,
      cashMicros: add(account.cashMicros, cashDeltaMicros),
      realizedPlMicros: add(account.realizedPlMicros, trade.realizedPlMicros),
      feesMicros: add(account.feesMicros, feeMicros),
    },
    order,
    after,
    positions,
  );
  return {
    ok: true,
    applied: true,
    account: next,
    effect: {
      fillId: fill.fillId,
      orderId: order.orderId,
      symbol: order.symbol,
      side: order.side,
      priceTicks: fill.priceTicks,
      qtyLots: fill.qtyLots,
      notionalMicros,
      feeMicros,
      realizedPlMicros: trade.realizedPlMicros,
      cashDeltaMicros,
      positionQtyLots: trade.position.qtyLots,
      positionCostBasisMicros: trade.position.costBasisMicros,
      orderFilledLots: after.filledLots,
      orderDone: remainingLots(after) === 0,
    },
  };
}

/**
 * The book closed the order (canceled, expired, replaced, or a market / IOC remainder dropped) after it
 * filled `filledLots` in total (the book's cumulative filled quantity: `filledQty` of the engine's
 * canceled / expired / replaced event). The reservation for the unfilled rest is released; if some of
 * those `filledLots` have not been applied yet (maker fills still in the book's outbox), the account keeps
 * reserving for exactly them until they arrive. Idempotent.
 */
export function applyOrderClosed(account: Account, orderId: string, filledLots: number): CloseResult {
  return guarded(() => closeUnguarded(account, orderId, filledLots)) as CloseResult;
}

function closeUnguarded(account: Account, orderId: string, filledLots: number): CloseResult {
  const order = account.orders.get(orderId);
  const unchanged = {
    ok: true as const,
    account,
    releasedCashMicros: 0,
    releasedLots: 0,
    alreadyClosed: true,
  };
  if (order === undefined) {
    if (account.completed.has(orderId)) return { ...unchanged, orderDone: true };
    return fail("unknown_order", `no open order ${orderId}`);
  }
  if (!Number.isSafeInteger(filledLots) || filledLots < order.filledLots || filledLots > order.qtyLots) {
    return fail(
      "inconsistent_fill_qty",
      `filled quantity ${filledLots} is not within [${order.filledLots} applied, ${order.qtyLots} ordered]`,
    );
  }
  if (order.finalFilledLots !== null) {
    if (order.finalFilledLots === filledLots) return { ...unchanged, orderDone: false };
    return fail(
      "inconsistent_fill_qty",
      `order was already closed with ${order.finalFilledLots} lots filled`,
    );
  }
  const closed: Order = { ...order, finalFilledLots: filledLots };
  const after: Order = { ...closed, reservedCashMicros: orderReservation(closed) };
  const releasedLots = order.side === "sell" ? remainingLots(order) - remainingLots(after) : 0;
  const next = withOrder(account, order, after, releaseHeld(account.positions, order, releasedLots));
  return {
    ok: true,
    account: next,
    releasedCashMicros: order.reservedCashMicros - after.reservedCashMicros,
    releasedLots,
    orderDone: remainingLots(after) === 0,
    alreadyClosed: false,
  };
}

/**
 * Drop the reservation of an order that never reached the book or that the book rejected (so it can have
 * no fills). An order with fills applied must be closed with `applyOrderClosed` instead. Idempotent.
 */
export function releaseReservation(account: Account, orderId: string): CloseResult {
  const order = account.orders.get(orderId);
  if (order !== undefined && order.filledLots > 0) {
    return fail("order_has_fills", `order ${orderId} has fills; close it with applyOrderClosed`);
  }
  return applyOrderClosed(account, orderId, 0);
}

// ---------------------------------------------------------------------------------------------------
// Prices
// ---------------------------------------------------------------------------------------------------

/** Latest prices by symbol, in ticks (latest trade, or mid). */
export type PriceMarks = Readonly<Record<string, number>>;

/**
 * The price the account values a position at: `prices[symbol]` when given (null if that is not a valid
 * price), else the position's mark. @internal
 */
export function priceOf(position: Position, prices: PriceMarks | undefined): number | null {
  if (prices === undefined || !Object.hasOwn(prices, position.symbol)) return position.markPriceTicks;
  const price = prices[position.symbol];
  return isPrice(price) ? price : null;
}

/**
 * Store the latest prices as the marks of the positions held (symbols without a position are ignored).
 * Later views without explicit prices use these marks; fills also update the mark of their symbol.
 */
export function markToMarket(account: Account, prices: PriceMarks): AccountResult {
  let positions: Map<string, Position> | null = null;
  for (const position of account.positions.values()) {
    if (!Object.hasOwn(prices, position.symbol)) continue;
    const price = prices[position.symbol];
    if (!isPrice(price)) return fail("invalid_price", `price of ${position.symbol} out of range`);
    if (price === position.markPriceTicks) continue;
    positions ??= new Map(account.positions);
    positions.set(position.symbol, { ...position, markPriceTicks: price });
  }
  return { ok: true, account: positions === null ? account : { ...account, positions } };
}
