import { describe, expect, it } from "vitest";
import { applyOrderClosed, reset } from "./account.ts";
import { AAPL, fill, newAccount, reserve, USD } from "./fixtures.test-util.ts";
import { type AccountSnapshot, fromSnapshot, toSnapshot } from "./snapshot.ts";
import type { Account } from "./types.ts";
import type { AccountSymbolRules } from "./units.ts";
import { rollTradingDay } from "./view.ts";

const FEE: AccountSymbolRules = {
  ...AAPL,
  symbol: "FEE",
  tickSize: "0.001",
  lotSize: "0.01",
  fees: { notionalBps: "0.35", perUnit: "0.0007" },
};

/** An account with something of everything: positions, fee credits, open and closing orders, memory. */
function richAccount(): Account {
  let a = newAccount({ completedOrderMemory: 50, maxOrderNotionalMicros: 50_000 * USD });
  a = reserve(a, {
    orderId: "gone",
    symbol: "AAPL",
    side: "buy",
    type: "limit",
    qtyLots: 1,
    limitPriceTicks: 100,
  });
  const r = reset(a);
  if (!r.ok) throw new Error(r.message);
  a = r.account;
  a = reserve(a, {
    orderId: "b1",
    clientOrderId: "c-b1",
    symbol: "AAPL",
    side: "buy",
    type: "limit",
    qtyLots: 10,
    limitPriceTicks: 10_000,
  });
  a = fill(a, { fillId: "1", orderId: "b1", priceTicks: 9_990, qtyLots: 10 });
  a = reserve(
    a,
    { orderId: "b2", clientOrderId: "c-b2", symbol: "FEE", side: "buy", type: "market", qtyLots: 777 },
    {
      rules: FEE,
      referencePriceTicks: 12_345,
    },
  );
  a = fill(a, { fillId: "2", orderId: "b2", priceTicks: 12_340, qtyLots: 333 });
  a = reserve(a, {
    orderId: "s1",
    symbol: "AAPL",
    side: "sell",
    type: "limit",
    qtyLots: 6,
    limitPriceTicks: 10_100,
  });
  const closed = applyOrderClosed(a, "s1", 4); // 4 filled at the book, not delivered yet
  if (!closed.ok) throw new Error(closed.message);
  a = closed.account;
  a = reserve(a, {
    orderId: "s2",
    symbol: "AAPL",
    side: "sell",
    type: "stop",
    qtyLots: 2,
    stopPriceTicks: 9_000,
  });
  const rolled = rollTradingDay(a, { AAPL: 10_050, FEE: 12_000 });
  if (!rolled.ok) throw new Error(rolled.message);
  return rolled.account;
}

function mutated(edit: (s: AccountSnapshot) => void): unknown {
  const s = JSON.parse(JSON.stringify(toSnapshot(richAccount()))) as AccountSnapshot;
  edit(s);
  return s;
}

describe("snapshots", () => {
  it("round-trip exactly through JSON", () => {
    const a = richAccount();
    const snap = toSnapshot(a);
    const text = JSON.stringify(snap);
    expect(JSON.parse(text)).toEqual(snap); // JSON-safe: no Maps, bigints or undefined
    const restored = fromSnapshot(JSON.parse(text));
    expect(restored.ok).toBe(true);
    if (!restored.ok) return;
    expect(restored.account).toEqual(a);
    expect(JSON.stringify(toSnapshot(restored.account))).toBe(text);
  });

  it("carry what the DO must persist: open orders with their fill-dedup sets and fee credits, and memory", () => {
    const snap = toSnapshot(richAccount());
    expect(snap.epoch).toBe(1);
    expect(snap.orders.map((o) => [o.orderId, o.fillIds, o.finalFilledLots])).toEqual([
      ["b2", ["2"], null],
      ["s1", [], 4],
      ["s2", [], null],
    ]);
    expect(snap.orders[0]?.feeCredit).toMatch(/^[1-9][0-9]*$/);
    expect(snap.completed).toEqual([
      ["gone", null, "reset"],
      ["b1", "c-b1", "completed"],
    ]);
  });

  it.each<[string, (s: AccountSnapshot) => void]>([
    [
      "cash that breaks the ledger",
      (s) => {
        s.cashMicros += 1;
      },
    ],
    [
      "an unknown version",
      (s) => {
        (s as { version: number }).version = 2;
      },
    ],
    [
      "a sell order holding more than the position",
      (s) => {
        s.orders[2]!.qtyLots = 50;
      },
    ],
    [
      "a fee credit of a whole micro-USD or more",
      (s) => {
        s.orders[0]!.feeCredit = "1".padEnd(20, "0");
      },
    ],
    [
      "a negative fee credit",
      (s) => {
        s.orders[0]!.feeCredit = "-1";
      },
    ],
    [
      "an order filled beyond its quantity",
      (s) => {
        s.orders[0]!.filledLots = 10_000;
      },
    ],
    [
      "a repeated order",
      (s) => {
        s.orders.push(s.orders[1]!);
      },
    ],
    [
      "a tick size finer than a micro-USD per lot",
      (s) => {
        s.positions[0]!.tickSize = "0.0000001";
      },
    ],
    [
      "an invalid config",
      (s) => {
        (s.config as { maxOpenOrders: number }).maxOpenOrders = 0;
      },
    ],
    [
      "a fractional amount",
      (s) => {
        s.realizedPlMicros = 0.5;
      },
    ],
  ])("refuse %s", (_name, edit) => {
    expect(fromSnapshot(mutated(edit))).toMatchObject({ ok: false, code: "invalid_snapshot" });
  });

  it("refuse things that are not snapshots at all", () => {
    expect(fromSnapshot(null)).toMatchObject({ ok: false, code: "invalid_snapshot" });
    expect(fromSnapshot("{}")).toMatchObject({ ok: false, code: "invalid_snapshot" });
  });
});
