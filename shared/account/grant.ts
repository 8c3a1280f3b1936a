/**
 * Capital contributed in kind: an administrator gives an account shares, for example the inventory a
 * market-making account starts with (a long-only practice market has no other source of shares).
 *
 * The shares enter at `priceTicks` as their cost basis, and the account's starting capital grows by the
 * same amount, so the ledger invariant (starting cash + realized − fees = cash + Σ cost basis) still holds
 * exactly and the grant itself is neither profit nor loss (last_equity grows by it too, so it does not show
 * as a daily gain). A reset drops granted shares with everything
 * else (the starting cash goes back to the config's).
 */
import type { Account, AccountResult, Position } from "./types.ts";
import {
  type AccountSymbolRules,
  add,
  notionalOf,
  OverflowError,
  sameUnits,
  symbolUnitsOf,
} from "./units.ts";

/**
 * Add `qtyLots` of `rules.symbol` at a cost basis of `priceTicks` per lot to the account, raising its
 * starting capital by the same value. Fails with `invalid_grant` (bad quantity, price or units, or units
 * that differ from the symbol's open position or orders) or `overflow`.
 *
 * @example
 * ```ts
 * const r = grantPosition(account, { symbol: "ACME", tickSize: "0.01", lotSize: "1" }, 500, 10_000);
 * // r.account holds 500 ACME with a cost basis of 50,000 USD; starting capital +50,000 USD
 * ```
 */
export function grantPosition(
  account: Account,
  rules: Pick<AccountSymbolRules, "symbol" | "tickSize" | "lotSize">,
  qtyLots: number,
  priceTicks: number,
): AccountResult {
  const fail = (message: string): AccountResult => ({ ok: false, code: "invalid_grant", message });
  if (!Number.isSafeInteger(qtyLots) || qtyLots <= 0) return fail("qtyLots must be a positive integer");
  if (!Number.isSafeInteger(priceTicks) || priceTicks <= 0)
    return fail("priceTicks must be a positive integer");
  if (typeof rules?.symbol !== "string" || rules.symbol.length === 0) return fail("symbol must be a string");
  const units = symbolUnitsOf(rules.tickSize, rules.lotSize);
  if (!units.ok) return fail(units.problem);
  const existing = account.positions.get(rules.symbol);
  const differs =
    (existing !== undefined && !sameUnits(existing.units, units.value)) ||
    [...account.orders.values()].some((o) => o.symbol === rules.symbol && !sameUnits(o.units, units.value));
  if (differs)
    return fail(`tick or lot size of ${rules.symbol} differs from the account's position or orders`);
  try {
    const basis = notionalOf(units.value, priceTicks, qtyLots);
    const position: Position = {
      symbol: rules.symbol,
      units: existing?.units ?? units.value,
      qtyLots: add(existing?.qtyLots ?? 0, qtyLots),
      costBasisMicros: add(existing?.costBasisMicros ?? 0, basis),
      heldLots: existing?.heldLots ?? 0,
      markPriceTicks: existing?.markPriceTicks ?? priceTicks,
    };
    const positions = new Map(account.positions);
    positions.set(rules.symbol, position);
    return {
      ok: true,
      account: {
        ...account,
        startingCashMicros: add(account.startingCashMicros, basis),
        // Contributed capital is not a daily gain either.
        lastEquityMicros: add(account.lastEquityMicros, basis),
        positions,
      },
    };
  } catch (e: unknown) {
    if (e instanceof OverflowError)
      return { ok: false, code: "overflow", message: "grant value out of range" };
    throw e;
  }
}
