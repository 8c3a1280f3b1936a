import { describe, expect, it } from "vitest";
import {
  applyFill,
  applyOrderClosed,
  buyingPowerMicros,
  createAccount,
  markToMarket,
  qtyAvailableLots,
  releaseReservation,
  reserveForOrder,
  reset,
} from "./account.ts";
import { AAPL, expectInvariants, fill, newAccount, reserve, USD } from "./fixtures.test-util.ts";
import type { AccountSymbolRules } from "./units.ts";
import { accountView, rollTradingDay } from "./view.ts";

describe("a new account", () => {
  it("starts with 100,000 USD of cash, all of it buying power", () => {
    const account = newAccount();
    expect(account.cashMicros).toBe(100_000 * USD);
    expect(buyingPowerMicros(account)).toBe(100_000 * USD);
    expectInvariants(account);
    const view = accountView(account);
    expect(view.ok && view.account).toMatchObject({
      cash: "100000",
      buying_power: "100000",
      equity: "100000",
      last_equity: "100000",
      long_market_value: "0",
      portfolio_value: "100000",
    });
  });

  it("takes a configured starting cash", () => {
    expect(newAccount({ startingCashMicros: 2_500 * USD }).cashMicros).toBe(2_500 * USD);
  });

  it("refuses an invalid config", () => {
    const created = createAccount({ accountId: "a", maxOpenOrders: 0 });
    expect(created).toMatchObject({ ok: false, code: "invalid_config" });
    expect(createAccount({ accountId: "" })).toMatchObject({ ok: false, code: "invalid_config" });
    expect(createAccount({ accountId: "a", startingCashMicros: 2 ** 53 })).toMatchObject({ ok: false });
  });
});

describe("the documented round trip: buy 10 @ 100, sell 4 @ 110, sell 6 @ 90", () => {
  // 100.00 USD = 10,000 ticks of 0.01; one tick × one lot = 10,000 micros.
  it("ends with realized PnL of −20 USD and cash of 99,980 USD", () => {
    let a = newAccount();
    a = reserve(a, {
      orderId: "b1",
      symbol: "AAPL",
      side: "buy",
      type: "limit",
      qtyLots: 10,
      limitPriceTicks: 10_000,
    });
    expect(a.reservedCashMicros).toBe(1_000 * USD);
    expect(buyingPowerMicros(a)).toBe(99_000 * USD);
    expect(a.cashMicros).toBe(100_000 * USD); // Alpaca's cash still includes the reservation

    a = fill(a, { fillId: "f1", orderId: "b1", priceTicks: 10_000, qtyLots: 10 });
    expect(a.cashMicros).toBe(99_000 * USD);
    expect(a.reservedCashMicros).toBe(0);
    expect(a.positions.get("AAPL")).toMatchObject({ qtyLots: 10, costBasisMicros: 1_000 * USD, heldLots: 0 });

    a = reserve(a, {
      orderId: "s1",
      symbol: "AAPL",
      side: "sell",
      type: "limit",
      qtyLots: 4,
      limitPriceTicks: 11_000,
    });
    expect(qtyAvailableLots(a, "AAPL")).toBe(6);
    a = fill(a, { fillId: "f2", orderId: "s1", priceTicks: 11_000, qtyLots: 4 });
    expect(a.cashMicros).toBe(99_440 * USD);
    expect(a.realizedPlMicros).toBe(40 * USD); // 440 − 4/10 of 1,000
    expect(a.positions.get("AAPL")).toMatchObject({ qtyLots: 6, costBasisMicros: 600 * USD });

    a = reserve(a, {
      orderId: "s2",
      symbol: "AAPL",
      side: "sell",
      type: "limit",
      qtyLots: 6,
      limitPriceTicks: 9_000,
    });
    a = fill(a, { fillId: "f3", orderId: "s2", priceTicks: 9_000, qtyLots: 6 });
    expect(a.cashMicros).toBe(99_980 * USD);
    expect(a.realizedPlMicros).toBe(-20 * USD); // +40 − 60
    expect(a.positions.size).toBe(0);
    expect(a.orders.size).toBe(0);
    expect(a.startingCashMicros + a.realizedPlMicros - a.feesMicros).toBe(a.cashMicros);
  });
});

describe("average cost", () => {
  // tick 0.000001 × lot 1: one tick × one lot = 1 micro, so odd bases are easy to build.
  const MICRO: AccountSymbolRules = { ...AAPL, symbol: "XYZ", tickSize: "0.000001" };

  it("releases the floor of the proportional basis and leaves the remainder with the open lots", () => {
    let a = newAccount();
    a = reserve(
      a,
      { orderId: "b", symbol: "XYZ", side: "buy", type: "limit", qtyLots: 3, limitPriceTicks: 40 },
      MICRO,
    );
    a = fill(a, { fillId: "1", orderId: "b", priceTicks: 33, qtyLots: 1 });
    a = fill(a, { fillId: "2", orderId: "b", priceTicks: 33, qtyLots: 1 });
    a = fill(a, { fillId: "3", orderId: "b", priceTicks: 34, qtyLots: 1 });
    expect(a.positions.get("XYZ")?.costBasisMicros).toBe(100);
    a = reserve(
      a,
      { orderId: "s", symbol: "XYZ", side: "sell", type: "limit", qtyLots: 3, limitPriceTicks: 1 },
      MICRO,
    );
    a = fill(a, { fillId: "4", orderId: "s", priceTicks: 50, qtyLots: 1 });
    expect(a.positions.get("XYZ")?.costBasisMicros).toBe(67); // released floor(100/3) = 33
    expect(a.realizedPlMicros).toBe(50 - 33);
    a = fill(a, { fillId: "5", orderId: "s", priceTicks: 50, qtyLots: 1 });
    expect(a.positions.get("XYZ")?.costBasisMicros).toBe(34); // released floor(67/2) = 33
    a = fill(a, { fillId: "6", orderId: "s", priceTicks: 50, qtyLots: 1 });
    expect(a.positions.has("XYZ")).toBe(false); // the last lot releases the remaining 34
    expect(a.realizedPlMicros).toBe(150 - 100);
  });
});

describe("fees", () => {
  // tick 0.001 × lot 1: one tick × one lot = 1,000 micros. 1 bp of a 0.004 USD fill is 0.4 micros.
  const TINY: AccountSymbolRules = {
    ...AAPL,
    symbol: "TINY",
    tickSize: "0.001",
    fees: { notionalBps: "1" },
  };

  it("rounds up once per order, however the order is split into fills", () => {
    let a = newAccount();
    a = reserve(
      a,
      { orderId: "b", symbol: "TINY", side: "buy", type: "limit", qtyLots: 3, limitPriceTicks: 4 },
      TINY,
    );
    // 3 lots × 4 ticks × 1,000 = 12,000 micros, fee bound ceil(1.2) = 2.
    expect(a.reservedCashMicros).toBe(12_002);
    a = fill(a, { fillId: "1", orderId: "b", priceTicks: 4, qtyLots: 1 });
    expect(a.feesMicros).toBe(1); // ceil(0.4)
    expect(a.reservedCashMicros).toBe(8_001); // 8,000 + (ceil(1.2) − 1)
    a = fill(a, { fillId: "2", orderId: "b", priceTicks: 4, qtyLots: 1 });
    expect(a.feesMicros).toBe(1); // ceil(0.8): the first fill's rounding already paid for it
    a = fill(a, { fillId: "3", orderId: "b", priceTicks: 4, qtyLots: 1 });
    expect(a.feesMicros).toBe(2); // ceil(1.2); per-fill rounding would have charged 3
    expect(a.cashMicros).toBe(100_000 * USD - 12_000 - 2);
    expect(a.reservedCashMicros).toBe(0);
  });

  it("charges basis points of notional plus a per-unit fee, and takes sell fees from the proceeds", () => {
    const FEE: AccountSymbolRules = { ...AAPL, fees: { notionalBps: "2.5", perUnit: "0.005" } };
    let a = newAccount();
    a = reserve(
      a,
      { orderId: "b", symbol: "AAPL", side: "buy", type: "limit", qtyLots: 100, limitPriceTicks: 10_000 },
      FEE,
    );
    // 10,000 USD × 2.5 bp = 2.5 USD, plus 100 × 0.005 = 0.5 USD.
    expect(a.reservedCashMicros).toBe(10_003 * USD);
    a = fill(a, { fillId: "1", orderId: "b", priceTicks: 10_000, qtyLots: 100 });
    expect(a.feesMicros).toBe(3 * USD);
    expect(a.positions.get("AAPL")?.costBasisMicros).toBe(10_000 * USD); // fees are not in the basis
    a = reserve(
      a,
      { orderId: "s", symbol: "AAPL", side: "sell", type: "market", qtyLots: 100 },
      {
        rules: FEE,
        referencePriceTicks: 10_000,
      },
    );
    a = fill(a, { fillId: "2", orderId: "s", priceTicks: 10_100, qtyLots: 100 });
    // 10,100 USD × 2.5 bp = 2.525, plus 0.5.
    expect(a.feesMicros).toBe(3 * USD + 3_025_000);
    expect(a.realizedPlMicros).toBe(100 * USD);
    expect(a.cashMicros).toBe(100_000 * USD + 100 * USD - 3 * USD - 3_025_000);
  });
});

describe("market buys", () => {
  it("reserve at the reference price plus the collar and release the excess as they fill", () => {
    let a = newAccount();
    const r = reserveForOrder(
      a,
      { orderId: "m", symbol: "AAPL", side: "buy", type: "market", qtyLots: 10 },
      { rules: AAPL, referencePriceTicks: 10_000 },
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.protectivePriceTicks).toBe(10_500); // 100.00 × 1.05
    expect(r.reservedCashMicros).toBe(1_050 * USD);
    a = r.account;
    a = fill(a, { fillId: "1", orderId: "m", priceTicks: 10_000, qtyLots: 4 });
    expect(a.reservedCashMicros).toBe(630 * USD); // 6 lots left at 105.00
    expect(buyingPowerMicros(a)).toBe(100_000 * USD - 400 * USD - 630 * USD);
    // The book drops the unfilled rest of the market order (IOC): the reservation goes with it.
    const closed = applyOrderClosed(a, "m", 4);
    expect(closed).toMatchObject({ ok: true, releasedCashMicros: 630 * USD, orderDone: true });
    if (!closed.ok) return;
    expect(buyingPowerMicros(closed.account)).toBe(99_600 * USD);
    expectInvariants(closed.account);
  });

  it("need a reference price", () => {
    const r = reserveForOrder(
      newAccount(),
      { orderId: "m", symbol: "AAPL", side: "buy", type: "market", qtyLots: 1 },
      {
        rules: AAPL,
      },
    );
    expect(r).toMatchObject({ ok: false, code: "no_reference_price" });
  });

  it("of a notional amount buy the whole lots that amount pays for at the reference price", () => {
    const FRACTIONAL: AccountSymbolRules = { ...AAPL, lotSize: "0.001" };
    const r = reserveForOrder(
      newAccount(),
      { orderId: "n", symbol: "AAPL", side: "buy", type: "market", notionalMicros: 1_000 * USD },
      { rules: FRACTIONAL, referencePriceTicks: 9_999 },
    );
    // One lot at 99.99 is 0.09999 USD: floor(1,000 / 0.09999) = 10,001 lots = 10.001 shares.
    expect(r).toMatchObject({ ok: true, qtyLots: 10_001, protectivePriceTicks: 10_499 });
  });

  it("stop buys reserve at the stop price plus the collar", () => {
    const r = reserveForOrder(
      newAccount(),
      { orderId: "s", symbol: "AAPL", side: "buy", type: "stop", qtyLots: 2, stopPriceTicks: 20_000 },
      { rules: AAPL },
    );
    expect(r).toMatchObject({ ok: true, protectivePriceTicks: 21_000, reservedCashMicros: 420 * USD });
  });
});

describe("sells", () => {
  function holding(lots: number) {
    let a = newAccount();
    a = reserve(a, {
      orderId: "b",
      symbol: "AAPL",
      side: "buy",
      type: "limit",
      qtyLots: lots,
      limitPriceTicks: 10_000,
    });
    return fill(a, { fillId: "fb", orderId: "b", priceTicks: 10_000, qtyLots: lots });
  }

  it("hold the position so that two open sells cannot oversell", () => {
    let a = holding(10);
    a = reserve(a, {
      orderId: "s1",
      symbol: "AAPL",
      side: "sell",
      type: "limit",
      qtyLots: 7,
      limitPriceTicks: 10_500,
    });
    const second = reserveForOrder(
      a,
      { orderId: "s2", symbol: "AAPL", side: "sell", type: "limit", qtyLots: 4, limitPriceTicks: 10_500 },
      { rules: AAPL },
    );
    expect(second).toMatchObject({ ok: false, code: "insufficient_position" });
    a = reserve(a, {
      orderId: "s3",
      symbol: "AAPL",
      side: "sell",
      type: "limit",
      qtyLots: 3,
      limitPriceTicks: 10_500,
    });
    expect(qtyAvailableLots(a, "AAPL")).toBe(0);
    const view = accountView(a);
    expect(view.ok && view.positions[0]).toMatchObject({ qty: "10", qty_available: "0" });
  });

  it("without a position are refused: shorting is not supported", () => {
    const r = reserveForOrder(
      newAccount(),
      { orderId: "s", symbol: "AAPL", side: "sell", type: "limit", qtyLots: 1, limitPriceTicks: 10_000 },
      { rules: AAPL },
    );
    expect(r).toMatchObject({ ok: false, code: "insufficient_position" });
  });

  it("keep holding lots the book filled but has not delivered yet when the order is canceled", () => {
    let a = holding(10);
    a = reserve(a, {
      orderId: "s",
      symbol: "AAPL",
      side: "sell",
      type: "limit",
      qtyLots: 8,
      limitPriceTicks: 10_500,
    });
    // The book filled 5 (the maker fill is still in its outbox), then the user canceled the rest.
    const closed = applyOrderClosed(a, "s", 5);
    expect(closed).toMatchObject({ ok: true, releasedLots: 3, orderDone: false });
    if (!closed.ok) return;
    a = closed.account;
    expect(qtyAvailableLots(a, "AAPL")).toBe(5);
    expect(applyOrderClosed(a, "s", 5)).toMatchObject({ ok: true, alreadyClosed: true, account: a });
    a = fill(a, { fillId: "late", orderId: "s", priceTicks: 10_500, qtyLots: 5 });
    expect(a.orders.size).toBe(0);
    expect(a.positions.get("AAPL")).toMatchObject({ qtyLots: 5, heldLots: 0 });
    // Anything more for that order is a duplicate.
    expect(applyFill(a, { fillId: "late", orderId: "s", priceTicks: 10_500, qtyLots: 5 })).toMatchObject({
      ok: true,
      applied: false,
      reason: "duplicate",
    });
  });
});

describe("fills", () => {
  it("are idempotent by fill id: a duplicate returns the very same account", () => {
    let a = newAccount();
    a = reserve(a, {
      orderId: "b",
      symbol: "AAPL",
      side: "buy",
      type: "limit",
      qtyLots: 10,
      limitPriceTicks: 10_000,
    });
    a = fill(a, { fillId: "f1", orderId: "b", priceTicks: 9_900, qtyLots: 3 });
    const again = applyFill(a, { fillId: "f1", orderId: "b", priceTicks: 9_900, qtyLots: 3 });
    expect(again).toMatchObject({ ok: true, applied: false, reason: "duplicate" });
    expect(again.ok && again.account).toBe(a);
  });

  it("beyond the order's remaining quantity are refused as overfills", () => {
    let a = newAccount();
    a = reserve(a, {
      orderId: "b",
      symbol: "AAPL",
      side: "buy",
      type: "limit",
      qtyLots: 2,
      limitPriceTicks: 10_000,
    });
    expect(applyFill(a, { fillId: "x", orderId: "b", priceTicks: 10_000, qtyLots: 3 })).toMatchObject({
      ok: false,
      code: "overfill",
    });
    expect(applyFill(a, { fillId: "x", orderId: "nope", priceTicks: 10_000, qtyLots: 1 })).toMatchObject({
      ok: false,
      code: "unknown_order",
    });
    expect(applyFill(a, { fillId: "x", orderId: "b", priceTicks: 0, qtyLots: 1 })).toMatchObject({
      ok: false,
      code: "invalid_fill",
    });
  });

  it("of an order forgotten after completedOrderMemory finished orders are reported as unknown", () => {
    let a = newAccount({ completedOrderMemory: 1 });
    for (const id of ["o1", "o2"]) {
      a = reserve(a, {
        orderId: id,
        symbol: "AAPL",
        side: "buy",
        type: "limit",
        qtyLots: 1,
        limitPriceTicks: 100,
      });
      a = fill(a, { fillId: `${id}-f`, orderId: id, priceTicks: 100, qtyLots: 1 });
    }
    expect(applyFill(a, { fillId: "o2-f", orderId: "o2", priceTicks: 100, qtyLots: 1 })).toMatchObject({
      applied: false,
    });
    expect(applyFill(a, { fillId: "o1-f", orderId: "o1", priceTicks: 100, qtyLots: 1 })).toMatchObject({
      ok: false,
      code: "unknown_order",
    });
  });
});

describe("reservations", () => {
  it("are released when the book rejects the order", () => {
    const before = newAccount();
    const a = reserve(before, {
      orderId: "b",
      symbol: "AAPL",
      side: "buy",
      type: "limit",
      qtyLots: 10,
      limitPriceTicks: 10_000,
    });
    const released = releaseReservation(a, "b");
    expect(released).toMatchObject({ ok: true, releasedCashMicros: 1_000 * USD, orderDone: true });
    if (!released.ok) return;
    expect(buyingPowerMicros(released.account)).toBe(buyingPowerMicros(before));
    expect(releaseReservation(released.account, "b")).toMatchObject({ ok: true, alreadyClosed: true });
  });

  it("of an order with fills cannot be dropped as a reject", () => {
    let a = newAccount();
    a = reserve(a, {
      orderId: "b",
      symbol: "AAPL",
      side: "buy",
      type: "limit",
      qtyLots: 10,
      limitPriceTicks: 10_000,
    });
    a = fill(a, { fillId: "f", orderId: "b", priceTicks: 10_000, qtyLots: 1 });
    expect(releaseReservation(a, "b")).toMatchObject({ ok: false, code: "order_has_fills" });
    expect(applyOrderClosed(a, "b", 0)).toMatchObject({ ok: false, code: "inconsistent_fill_qty" });
  });
});

describe("reserveForOrder rejects", () => {
  const buy = (qtyLots: number, limitPriceTicks = 10_000) =>
    ({
      orderId: `b${qtyLots}-${limitPriceTicks}`,
      symbol: "AAPL",
      side: "buy",
      type: "limit",
      qtyLots,
      limitPriceTicks,
    }) as const;

  it("a buy that costs more than the buying power", () => {
    const a = newAccount({ startingCashMicros: 1_000 * USD });
    expect(reserveForOrder(a, buy(10), { rules: AAPL }).ok).toBe(true);
    expect(reserveForOrder(a, buy(11), { rules: AAPL })).toMatchObject({
      ok: false,
      code: "insufficient_buying_power",
    });
  });

  it("orders above the account's max order notional and max position notional", () => {
    const a = newAccount({ maxOrderNotionalMicros: 500 * USD, maxPositionNotionalMicros: 800 * USD });
    expect(reserveForOrder(a, buy(6), { rules: AAPL })).toMatchObject({ code: "max_order_notional" });
    const first = reserve(a, buy(5));
    expect(reserveForOrder(first, buy(4), { rules: AAPL })).toMatchObject({ code: "max_position_notional" });
    expect(reserveForOrder(first, buy(3), { rules: AAPL }).ok).toBe(true);
  });

  it("an order beyond the max number of open orders", () => {
    let a = newAccount({ maxOpenOrders: 2 });
    a = reserve(a, buy(1));
    a = reserve(a, buy(2));
    expect(reserveForOrder(a, buy(3), { rules: AAPL })).toMatchObject({ code: "max_open_orders" });
  });

  it("a reused order id or client order id, naming the order that has it", () => {
    const a = reserve(newAccount(), { ...buy(1), clientOrderId: "mine" });
    expect(reserveForOrder(a, buy(1), { rules: AAPL })).toMatchObject({ code: "duplicate_order_id" });
    expect(reserveForOrder(a, { ...buy(2), clientOrderId: "mine" }, { rules: AAPL })).toMatchObject({
      code: "duplicate_client_order_id",
      existingOrderId: buy(1).orderId,
    });
  });

  it("quantities outside the symbol's rules and malformed orders", () => {
    const rules = { ...AAPL, minQtyLots: 2, maxQtyLots: 5, minNotionalTicksLots: 30_000 };
    const a = newAccount();
    expect(reserveForOrder(a, buy(1), { rules })).toMatchObject({ code: "qty_below_min" });
    expect(reserveForOrder(a, buy(6), { rules })).toMatchObject({ code: "qty_above_max" });
    expect(reserveForOrder(a, buy(2), { rules })).toMatchObject({ code: "min_notional" });
    expect(reserveForOrder(a, buy(0), { rules: AAPL })).toMatchObject({ code: "invalid_qty" });
    expect(reserveForOrder(a, buy(1, 0), { rules: AAPL })).toMatchObject({ code: "invalid_price" });
    expect(reserveForOrder(a, { ...buy(1), limitPriceTicks: undefined }, { rules: AAPL })).toMatchObject({
      code: "invalid_order",
    });
    expect(reserveForOrder(a, { ...buy(1), symbol: "MSFT" }, { rules: AAPL })).toMatchObject({
      code: "symbol_mismatch",
    });
  });

  it("symbols whose tick × lot is finer than a micro-USD", () => {
    const rules = { ...AAPL, tickSize: "0.0001", lotSize: "0.001" };
    expect(reserveForOrder(newAccount(), buy(1), { rules })).toMatchObject({ code: "invalid_symbol_rules" });
  });

  it("a symbol whose tick or lot size changed while the account holds it", () => {
    const a = reserve(newAccount(), buy(1));
    const rules = { ...AAPL, tickSize: "0.05" };
    expect(reserveForOrder(a, { ...buy(2), limitPriceTicks: 2_000 }, { rules })).toMatchObject({
      code: "symbol_rules_changed",
    });
  });

  it("amounts that would leave the safe integer range, without throwing", () => {
    const huge = { ...AAPL, lotSize: "1000000", maxQtyLots: 2 ** 40 - 1 };
    const r = reserveForOrder(newAccount(), buy(2 ** 39, 2 ** 35), { rules: huge });
    expect(r).toMatchObject({ ok: false, code: "overflow" });
  });
});

describe("reset", () => {
  it("restores the starting state and ignores late fills of the orders it dropped", () => {
    let a = newAccount();
    a = reserve(a, {
      orderId: "b",
      symbol: "AAPL",
      side: "buy",
      type: "limit",
      qtyLots: 10,
      limitPriceTicks: 10_000,
    });
    a = fill(a, { fillId: "f1", orderId: "b", priceTicks: 10_000, qtyLots: 5 });
    const r = reset(a);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const fresh = r.account;
    expect(fresh).toMatchObject({ epoch: 1, cashMicros: 100_000 * USD, realizedPlMicros: 0, feesMicros: 0 });
    expect(fresh.positions.size + fresh.orders.size).toBe(0);
    const late = applyFill(fresh, { fillId: "f2", orderId: "b", priceTicks: 10_000, qtyLots: 5 });
    expect(late).toMatchObject({ ok: true, applied: false, reason: "order_reset" });
    expect(late.ok && late.account).toBe(fresh);
    expect(reset(a, { startingCashMicros: 5 * USD })).toMatchObject({
      ok: true,
      account: { cashMicros: 5 * USD },
    });
  });
});

describe("prices and views", () => {
  it("value positions at the given prices, else at their marks, with Alpaca's field names", () => {
    let a = newAccount();
    a = reserve(a, {
      orderId: "b",
      symbol: "AAPL",
      side: "buy",
      type: "limit",
      qtyLots: 10,
      limitPriceTicks: 10_000,
    });
    a = fill(a, { fillId: "f1", orderId: "b", priceTicks: 9_950, qtyLots: 10 });
    const atFill = accountView(a);
    expect(atFill.ok && atFill.positions[0]?.current_price).toBe("99.50");

    const view = accountView(a, { AAPL: 11_000 });
    expect(view).toMatchObject({
      ok: true,
      account: {
        cash: "99005",
        buying_power: "99005",
        long_market_value: "1100",
        equity: "100105",
        portfolio_value: "100105",
        short_market_value: "0",
      },
      positions: [
        {
          symbol: "AAPL",
          side: "long",
          qty: "10",
          qty_available: "10",
          avg_entry_price: "99.5",
          cost_basis: "995",
          market_value: "1100",
          unrealized_pl: "105",
          unrealized_plpc: "0.105528", // 105 / 995 = 0.1055276…
          current_price: "110.00",
        },
      ],
    });

    const marked = markToMarket(a, { AAPL: 9_000, MSFT: 1 });
    expect(marked.ok).toBe(true);
    if (!marked.ok) return;
    const down = accountView(marked.account);
    expect(down.ok && down.positions[0]).toMatchObject({
      unrealized_pl: "-95",
      unrealized_plpc: "-0.095477",
    });
    expect(markToMarket(a, { AAPL: -1 })).toMatchObject({ ok: false, code: "invalid_price" });
    expect(accountView(a, { AAPL: 0.5 })).toMatchObject({ ok: false, code: "invalid_price" });

    const rolled = rollTradingDay(a, { AAPL: 11_000 });
    const rolledView = rolled.ok ? accountView(rolled.account) : null;
    expect(rolledView?.ok && rolledView.account.last_equity).toBe("100105");
  });
});
