/**
 * Average-cost position arithmetic, exact in integers.
 *
 * A position is a signed quantity in lots and a signed cost basis in micro-USD with the same sign (long:
 * both positive; short: both negative; flat: both zero). Fees are not part of the basis: the account books
 * them separately, so the ledger identity
 *
 *   starting cash + realized PnL − fees = cash + Σ cost basis
 *
 * holds exactly after every trade: a trade moves cash by its notional, and the basis by the notional
 * (opening) or by the released basis (closing), the difference being realized PnL.
 *
 * Reducing a position of |Q| lots by c lots releases floor(|basis| × c / |Q|) of its basis (in magnitude):
 * the remainder stays with the open lots, so closing the last lot releases all that is left and a fully
 * closed position has released exactly its whole basis. A trade larger than the position flips it: the
 * closing leg realizes PnL, the rest opens the other side at the trade price.
 *
 * The accounts of this module are long-only (see `docs/account-model.md`), so they never reach the short
 * branches; the function is general so that the arithmetic is tested once for both sides.
 */
import { add, fromBig, mul, notionalOf, type SymbolUnits, sub } from "./units.ts";

export interface PositionAmounts {
  /** Signed lots: > 0 long, < 0 short. */
  readonly qtyLots: number;
  /** Signed micro-USD, same sign as qtyLots; 0 when flat. */
  readonly costBasisMicros: number;
}

export interface TradeEffect {
  position: PositionAmounts;
  /** Realized PnL of the closing leg, micro-USD (0 if the trade only opened or added). */
  realizedPlMicros: number;
  /** Cash moved by the trade before fees: −notional for a buy, +notional for a sell. */
  cashDeltaMicros: number;
  /** Lots of the trade that reduced an existing position. */
  closedLots: number;
  /** Lots of the trade that opened or increased a position. */
  openedLots: number;
}

export const FLAT: PositionAmounts = { qtyLots: 0, costBasisMicros: 0 };

/**
 * Basis released when `closeLots` of a position of `qtyLots` (both > 0 here, magnitudes) are closed:
 * floor(basis × closeLots / qtyLots), or the whole basis when the position closes completely.
 */
export function releasedBasis(basisMicros: number, qtyLots: number, closeLots: number): number {
  if (closeLots === qtyLots) return basisMicros;
  const exact = basisMicros * closeLots;
  if (Number.isSafeInteger(exact)) return Math.floor(exact / qtyLots);
  return fromBig((BigInt(basisMicros) * BigInt(closeLots)) / BigInt(qtyLots));
}

/**
 * Apply one trade (a fill of `qtyLots` > 0 at `priceTicks` on `side`) to a position. Throws OverflowError
 * (caught by the account operations) when an amount leaves the safe integer range.
 */
export function applyTrade(
  position: PositionAmounts,
  side: "buy" | "sell",
  priceTicks: number,
  qtyLots: number,
  units: SymbolUnits,
): TradeEffect {
  const dir = side === "buy" ? 1 : -1;
  const notional = notionalOf(units, priceTicks, qtyLots);
  const cashDeltaMicros = side === "buy" ? sub(0, notional) : notional;
  const q = position.qtyLots;
  if (q === 0 || Math.sign(q) === dir) {
    // Opening or adding: the whole notional joins the basis.
    return {
      position: {
        qtyLots: add(q, dir * qtyLots),
        costBasisMicros: add(position.costBasisMicros, dir * notional),
      },
      realizedPlMicros: 0,
      cashDeltaMicros,
      closedLots: 0,
      openedLots: qtyLots,
    };
  }
  // Reducing (and maybe flipping): close min(qtyLots, |q|) lots first.
  const open = Math.abs(q);
  const basis = Math.abs(position.costBasisMicros);
  const closeLots = Math.min(qtyLots, open);
  const released = releasedBasis(basis, open, closeLots);
  const closeValue = notionalOf(units, priceTicks, closeLots);
  // Long closed by a sell: proceeds − released basis. Short closed by a buy: released basis − cost.
  const realizedPlMicros = q > 0 ? sub(closeValue, released) : sub(released, closeValue);
  const restLots = open - closeLots;
  const restBasis = basis - released;
  const openLots = qtyLots - closeLots;
  let next: PositionAmounts;
  if (restLots > 0) {
    next = { qtyLots: q > 0 ? restLots : 0 - restLots, costBasisMicros: q > 0 ? restBasis : 0 - restBasis };
  } else if (openLots > 0) {
    const openValue = mul(mul(priceTicks, openLots), units.microsPerTickLot);
    next = { qtyLots: dir * openLots, costBasisMicros: dir * openValue };
  } else {
    next = FLAT;
  }
  return { position: next, realizedPlMicros, cashDeltaMicros, closedLots: closeLots, openedLots: openLots };
}
