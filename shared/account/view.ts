/**
 * Alpaca-shaped views of an account (GET /v2/account, GET /v2/positions) and end-of-day equity.
 * Amounts are computed exactly in bigints and formatted by `shared/decimal.ts`.
 */
import { formatDecimal, formatMicros, formatSteps } from "../decimal.ts";
import { type PriceMarks, priceOf } from "./account.ts";
import type {
  Account,
  AccountResult,
  AccountView,
  AccountViewResult,
  Position,
  PositionView,
} from "./types.ts";
import { floorDiv, fromBig, OverflowError } from "./units.ts";

class InvalidPriceError extends Error {
  constructor(symbol: string) {
    super(`price of ${symbol} out of range`);
    this.name = "InvalidPriceError";
  }
}

type ViewFailure = { ok: false; code: "overflow" | "invalid_price"; message: string };

function viewFailure(e: unknown): ViewFailure {
  if (e instanceof OverflowError) return { ok: false, code: "overflow", message: "a figure is out of range" };
  if (e instanceof InvalidPriceError) return { ok: false, code: "invalid_price", message: e.message };
  throw e;
}

/** Scale of unrealized_plpc: 6 decimals. */
const PLPC_SCALE = 6;

/** Round num / den (den > 0) half away from zero. */
function roundHalfAway(num: bigint, den: bigint): bigint {
  const twice = 2n * num;
  return num >= 0n ? floorDiv(twice + den, 2n * den) : -floorDiv(-twice + den, 2n * den);
}

const money = (micros: number): string => formatMicros(micros, { trimZeros: true });

/** Figures of one position at the given prices, in micros (bigints for exactness). */
interface PositionFigures {
  position: Position;
  priceTicks: number;
  marketValue: bigint;
}

function figuresOf(account: Account, prices: PriceMarks | undefined): PositionFigures[] {
  const out: PositionFigures[] = [];
  for (const position of account.positions.values()) {
    const priceTicks = priceOf(position, prices);
    if (priceTicks === null) throw new InvalidPriceError(position.symbol);
    const marketValue =
      BigInt(position.qtyLots) * BigInt(priceTicks) * BigInt(position.units.microsPerTickLot);
    out.push({ position, priceTicks, marketValue });
  }
  return out;
}

/**
 * Equity in micro-USD at the given prices (else the positions' marks): cash + market value of the
 * positions. Fails with "invalid_price" (a given price is not a positive safe integer) or "overflow".
 */
export function equityMicros(
  account: Account,
  prices?: PriceMarks,
): { ok: true; value: number } | ViewFailure {
  try {
    let total = BigInt(account.cashMicros);
    for (const f of figuresOf(account, prices)) total += f.marketValue;
    return { ok: true, value: fromBig(total) };
  } catch (e: unknown) {
    return viewFailure(e);
  }
}

/**
 * Account and positions as Alpaca would show them, valued at `prices` (latest trade or mid, ticks) where
 * given and at each position's mark otherwise. Positions are sorted by symbol.
 *
 * @example
 * ```ts
 * const view = accountView(account, { AAPL: 11_000 });
 * if (view.ok) view.account.buying_power; // e.g. "98900"
 * ```
 */
export function accountView(account: Account, prices?: PriceMarks): AccountViewResult {
  try {
    const figures = figuresOf(account, prices).sort((a, b) =>
      a.position.symbol < b.position.symbol ? -1 : a.position.symbol > b.position.symbol ? 1 : 0,
    );
    let longValue = 0n;
    const positions: PositionView[] = figures.map(({ position, priceTicks, marketValue }) => {
      longValue += marketValue;
      const { units } = position;
      const basis = BigInt(position.costBasisMicros);
      const unrealized = marketValue - basis;
      // USD per whole unit of quantity, in micros: basis / (lots × lot size).
      const avgMicros = roundHalfAway(
        basis * 10n ** BigInt(units.lot.scale),
        BigInt(position.qtyLots) * BigInt(units.lot.units),
      );
      const plpc = basis === 0n ? 0n : roundHalfAway(unrealized * 10n ** BigInt(PLPC_SCALE), basis);
      return {
        symbol: position.symbol,
        side: "long",
        qty: formatSteps(position.qtyLots, units.lot, { trimZeros: true }),
        qty_available: formatSteps(position.qtyLots - position.heldLots, units.lot, { trimZeros: true }),
        avg_entry_price: money(fromBig(avgMicros)),
        market_value: money(fromBig(marketValue)),
        cost_basis: money(position.costBasisMicros),
        unrealized_pl: money(fromBig(unrealized)),
        unrealized_plpc: formatDecimal(fromBig(plpc), PLPC_SCALE, { trimZeros: true }),
        current_price: formatSteps(priceTicks, units.tick),
      };
    });
    const long = fromBig(longValue);
    const equity = fromBig(BigInt(account.cashMicros) + longValue);
    const buyingPower = fromBig(BigInt(account.cashMicros) - BigInt(account.reservedCashMicros));
    const view: AccountView = {
      id: account.config.accountId,
      currency: "USD",
      status: "ACTIVE",
      cash: money(account.cashMicros),
      buying_power: money(buyingPower),
      regt_buying_power: money(buyingPower),
      non_marginable_buying_power: money(buyingPower),
      equity: money(equity),
      last_equity: money(account.lastEquityMicros),
      long_market_value: money(long),
      short_market_value: "0",
      position_market_value: money(long),
      portfolio_value: money(equity),
      multiplier: "1",
      shorting_enabled: false,
      starting_cash: money(account.startingCashMicros),
      realized_pl: money(account.realizedPlMicros),
      fees: money(account.feesMicros),
      reserved_cash: money(account.reservedCashMicros),
    };
    return { ok: true, account: view, positions };
  } catch (e: unknown) {
    return viewFailure(e);
  }
}

/**
 * End of a trading day: remember today's equity (at `prices`, else the marks) as `last_equity`, the base
 * of Alpaca-style daily change figures. The caller decides when a day ends.
 */
export function rollTradingDay(account: Account, prices?: PriceMarks): AccountResult {
  const equity = equityMicros(account, prices);
  if (!equity.ok) return equity;
  return { ok: true, account: { ...account, lastEquityMicros: equity.value } };
}
