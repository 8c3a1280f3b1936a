import { describe, expect, it } from "vitest";
import { simulateSession } from "../../test/support/history-sim.ts";
import { parseAccountEvent } from "./events.ts";
import {
  balancesFromLedger,
  balancesOf,
  compareBalances,
  fillLines,
  type LedgerSum,
  ledgerLines,
  resetLines,
  unbalancedAssets,
} from "./ledger.ts";

const sumsOf = (lines: ReturnType<typeof ledgerLines>): LedgerSum[] => {
  const sums = new Map<string, LedgerSum>();
  for (const l of lines) {
    const key = `${l.account}|${l.symbol}|${l.asset}`;
    const prev = sums.get(key);
    sums.set(key, { ...l, amount: BigInt(prev?.amount ?? 0) + BigInt(l.amount) });
  }
  return [...sums.values()];
};

describe("ledger postings", () => {
  it.each([1, 2, 3, 4, 5])("add up to every account after a random session (seed %i)", (seed) => {
    const users = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    const sim = simulateSession({ userIds: users, steps: 150, seed });
    for (const e of sim.events) {
      expect(parseAccountEvent(JSON.parse(JSON.stringify(e)))).toMatchObject({ ok: true });
      expect(unbalancedAssets(ledgerLines(e))).toEqual([]);
    }
    for (const userId of users) {
      const lines = sim.events.filter((e) => e.userId === userId).flatMap(ledgerLines);
      const account = sim.accounts.get(userId);
      if (!account) throw new Error("no account");
      expect(compareBalances(balancesOf(account), balancesFromLedger(sumsOf(lines)))).toEqual([]);
    }
    expect(sim.events.some((e) => e.type === "account.reset")).toBe(true);
  });

  it("books a sell as proceeds, released basis and realized PnL", () => {
    const lines = fillLines({
      bookEventId: "ACME:7",
      orderId: "o",
      symbol: "ACME",
      side: "sell",
      priceTicks: 11_000,
      qtyLots: 4,
      tickSize: "0.01",
      lotSize: "1",
      notionalMicros: 440_000_000,
      feeMicros: 70_000,
      realizedPlMicros: 40_000_000,
      cashDeltaMicros: 439_930_000,
      positionQtyLots: 6,
      positionCostBasisMicros: 600_000_000,
      liquidity: "maker",
      at: 0,
    });
    expect(lines).toEqual([
      { account: "cash", symbol: null, asset: "USD", amount: 439_930_000 },
      { account: "position", symbol: "ACME", asset: "USD", amount: -400_000_000 },
      { account: "fees", symbol: null, asset: "USD", amount: 70_000 },
      { account: "realized_pnl", symbol: null, asset: "USD", amount: -40_000_000 },
      { account: "position", symbol: "ACME", asset: "ACME", amount: -4 },
      { account: "market", symbol: "ACME", asset: "ACME", amount: 4 },
    ]);
  });

  it("closes every balance in a reset and opens the new epoch", () => {
    const before = {
      cashMicros: 90,
      startingCashMicros: 100,
      realizedPlMicros: 5,
      feesMicros: 1,
      positions: [{ symbol: "X", qtyLots: 2, costBasisMicros: 14, tickSize: "0.01", lotSize: "1" }],
    };
    const after = {
      cashMicros: 100,
      startingCashMicros: 100,
      realizedPlMicros: 0,
      feesMicros: 0,
      positions: [],
    };
    const lines = resetLines(before, after);
    expect(unbalancedAssets(lines)).toEqual([]);
    expect(
      balancesFromLedger(
        sumsOf([...resetLines({ ...after, cashMicros: 0, startingCashMicros: 0 }, before), ...lines]),
      ),
    ).toEqual(after);
  });

  it("refuses an event whose figures were tampered with", () => {
    const sim = simulateSession({ userIds: [crypto.randomUUID(), crypto.randomUUID()], steps: 30, seed: 9 });
    const fill = sim.events.find((e) => e.type === "account.fill");
    if (fill?.type !== "account.fill") throw new Error("no fill");
    expect(
      unbalancedAssets(ledgerLines({ ...fill, fill: { ...fill.fill, feeMicros: fill.fill.feeMicros + 1 } })),
    ).toEqual(["USD"]);
    expect(parseAccountEvent({ ...fill, userId: "nope" })).toMatchObject({
      ok: false,
      error: expect.stringContaining("userId"),
    });
  });
});
