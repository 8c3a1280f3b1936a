import { describe, expect, it } from "vitest";
import { grantPosition } from "./grant.ts";
import { accountView, applyFill, checkInvariants, createAccount, reserveForOrder } from "./index.ts";

const rules = {
  symbol: "ACME",
  tickSize: "0.01",
  lotSize: "1",
  minQtyLots: 1,
  maxQtyLots: 1_000_000,
  minNotionalTicksLots: 0,
};

describe("granting shares", () => {
  it("adds the shares at their cost basis and keeps the ledger balanced", () => {
    const created = createAccount({ accountId: "mm" });
    if (!created.ok) throw new Error(created.message);
    const granted = grantPosition(created.account, rules, 500, 10_000);
    if (!granted.ok) throw new Error(granted.message);
    const a = granted.account;
    expect(a.positions.get("ACME")).toMatchObject({ qtyLots: 500, costBasisMicros: 50_000_000_000 });
    expect(a.startingCashMicros).toBe(created.account.startingCashMicros + 50_000_000_000);
    expect(checkInvariants(a).ok).toBe(true);
    const view = accountView(a, { ACME: 10_000 });
    expect(view.ok && view.positions[0]).toMatchObject({ qty: "500", avg_entry_price: "100" });
  });

  it("lets the granted shares be sold, realizing PnL against the grant price", () => {
    const created = createAccount({ accountId: "mm" });
    if (!created.ok) throw new Error(created.message);
    const granted = grantPosition(created.account, rules, 10, 10_000);
    if (!granted.ok) throw new Error(granted.message);
    const r = reserveForOrder(
      granted.account,
      { orderId: "s1", symbol: "ACME", side: "sell", type: "limit", qtyLots: 10, limitPriceTicks: 11_000 },
      { rules },
    );
    if (!r.ok) throw new Error(r.message);
    const f = applyFill(r.account, { fillId: "ACME:1", orderId: "s1", priceTicks: 11_000, qtyLots: 10 });
    if (!f.ok || !f.applied) throw new Error("fill not applied");
    expect(f.effect.realizedPlMicros).toBe(100_000_000);
    expect(checkInvariants(f.account).ok).toBe(true);
  });

  it("refuses nonsense quantities and prices", () => {
    const created = createAccount({ accountId: "mm" });
    if (!created.ok) throw new Error(created.message);
    expect(grantPosition(created.account, rules, 0, 10_000).ok).toBe(false);
    expect(grantPosition(created.account, rules, 5, -1).ok).toBe(false);
    expect(grantPosition(created.account, rules, 1.5, 10_000).ok).toBe(false);
  });
});

describe("granting shares, more", () => {
  it("does not count the grant as a daily gain", () => {
    const created = createAccount({ accountId: "mm" });
    if (!created.ok) throw new Error(created.message);
    const granted = grantPosition(created.account, rules, 10, 10_000);
    if (!granted.ok) throw new Error(granted.message);
    const view = accountView(granted.account, { ACME: 10_000 });
    expect(view.ok && [view.account.equity, view.account.last_equity]).toEqual(["101000", "101000"]);
  });

  it("refuses units that differ from the position's, however the sizes are written", () => {
    const created = createAccount({ accountId: "mm" });
    if (!created.ok) throw new Error(created.message);
    const granted = grantPosition(created.account, rules, 10, 10_000);
    if (!granted.ok) throw new Error(granted.message);
    expect(grantPosition(granted.account, { ...rules, tickSize: "0.010" }, 1, 10_000).ok).toBe(true);
    expect(grantPosition(granted.account, { ...rules, tickSize: "0.05" }, 1, 10_000)).toMatchObject({
      ok: false,
      code: "invalid_grant",
    });
  });

  it("refuses a grant that would overflow, without throwing", () => {
    const created = createAccount({ accountId: "mm" });
    if (!created.ok) throw new Error(created.message);
    expect(grantPosition(created.account, rules, 2 ** 40, 2 ** 30)).toMatchObject({
      ok: false,
      code: "overflow",
    });
  });
});
