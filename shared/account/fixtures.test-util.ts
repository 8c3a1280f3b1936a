/**
 * Test helpers shared by the account tests (not a test file itself: vitest only collects `*.test.ts`).
 */
import { expect } from "vitest";
import { applyFill, createAccount, reserveForOrder } from "./account.ts";
import { checkInvariants } from "./invariants.ts";
import type { Account, AccountConfigInput, Fill, MarketContext, OrderRequest } from "./types.ts";
import type { AccountSymbolRules } from "./units.ts";

export const USD = 1_000_000;

/** A plain equity: tick 0.01, lot 1 → one tick × one lot = 10,000 micros. */
export const AAPL: AccountSymbolRules = {
  symbol: "AAPL",
  tickSize: "0.01",
  lotSize: "1",
  minQtyLots: 1,
  maxQtyLots: 1_000_000,
  minNotionalTicksLots: 0,
};

export function newAccount(input: Partial<AccountConfigInput> = {}): Account {
  const created = createAccount({ accountId: "acct-1", ...input });
  if (!created.ok) throw new Error(created.message);
  return created.account;
}

export function expectInvariants(account: Account): void {
  const check = checkInvariants(account);
  expect(check.ok ? [] : check.problems).toEqual([]);
}

/** Reserve and expect success. */
export function reserve(
  account: Account,
  request: OrderRequest,
  market: MarketContext | AccountSymbolRules = AAPL,
): Account {
  const ctx = "rules" in market ? market : { rules: market };
  const r = reserveForOrder(account, request, ctx);
  if (!r.ok) throw new Error(`reserve failed: ${r.code} ${r.message}`);
  expectInvariants(r.account);
  return r.account;
}

/** Apply a fill and expect it to be applied. */
export function fill(account: Account, f: Fill): Account {
  const r = applyFill(account, f);
  if (!r.ok) throw new Error(`fill failed: ${r.code} ${r.message}`);
  if (!r.applied) throw new Error(`fill ignored: ${r.reason}`);
  expectInvariants(r.account);
  return r.account;
}
