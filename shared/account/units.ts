/**
 * Units of one symbol as the account sees them: price ticks × quantity lots → micro-USD, and fees.
 *
 * Everything is an integer. Notional in micros is `priceTicks × qtyLots × microsPerTickLot`, where
 * `microsPerTickLot` is tickSize × lotSize expressed in micro-USD; a symbol whose tick × lot is not a whole
 * number of micro-USD (e.g. tick 0.0001 × lot 0.001 = 1e-7 USD) is refused, so every notional is exact.
 *
 * @internal Used by the account operations; the public surface is re-exported from `index.ts`.
 */
import { formatDecimal, MICRO_SCALE, parseDecimal, parseStep, type Step } from "../decimal.ts";
import type { SymbolRules } from "../engine/types.ts";

/** A fee schedule of one symbol, as decimal strings. Both parts default to zero. */
export interface FeeSchedule {
  /** Basis points of notional, up to 4 decimals, at most 1000 (10 %). "0.5" = 0.005 % of notional. */
  notionalBps?: string;
  /** USD per whole unit of quantity (per share), up to 6 decimals, e.g. "0.005". */
  perUnit?: string;
}

/**
 * What the account needs to know about a symbol: the engine's static rules plus the fee schedule.
 * The account copies the tick / lot size and the fee schedule into every order it reserves, so later fills
 * are valued with the figures the order was accepted under.
 */
export interface AccountSymbolRules
  extends Pick<
    SymbolRules,
    "symbol" | "tickSize" | "lotSize" | "minQtyLots" | "maxQtyLots" | "minNotionalTicksLots"
  > {
  fees?: FeeSchedule;
}

/** Tick and lot of a symbol, parsed, with the micro-USD value of one tick × one lot. */
export interface SymbolUnits {
  readonly tickSize: string;
  readonly lotSize: string;
  readonly tick: Step;
  readonly lot: Step;
  /** tickSize × lotSize in micro-USD: an integer ≥ 1. */
  readonly microsPerTickLot: number;
}

/**
 * A fee schedule in integers. The exact fee of a fill is a fraction `numerator / denominator` micro-USD with
 *   numerator = notionalMicros × bps4 × 10^lotScale + perUnitMicros × qtyLots × lotUnits × 10^8
 *   denominator = 10^8 × 10^lotScale
 * (`bps4` is the rate in 1e-4 basis points, so `notional × bps4 / 10^8` is the notional part in micros).
 */
export interface FeeRates {
  /** Canonical decimal strings (trailing zeros trimmed), as persisted. */
  readonly notionalBps: string;
  readonly perUnit: string;
  /** Rate in units of 1e-4 basis points. */
  readonly bps4: number;
  /** Micro-USD per whole unit of quantity. */
  readonly perUnitMicros: number;
  readonly lotUnits: bigint;
  readonly lotPow: bigint;
  readonly denominator: bigint;
}

/** Largest fee rate accepted: 10 % of notional. */
export const MAX_FEE_BPS = 1000;

/**
 * Thrown by the checked arithmetic below when a result is not a safe integer. Never escapes the module:
 * every exported operation catches it and returns `{ ok: false, code: "overflow" }`.
 * @internal
 */
export class OverflowError extends Error {
  constructor() {
    super("amount out of the safe integer range");
    this.name = "OverflowError";
  }
}

function checked(n: number): number {
  if (!Number.isSafeInteger(n)) throw new OverflowError();
  // Never hand out negative zero: it would break deep equality of states.
  return n === 0 ? 0 : n;
}

/** @internal */
export function add(a: number, b: number): number {
  return checked(a + b);
}

/** @internal */
export function sub(a: number, b: number): number {
  return checked(a - b);
}

/** @internal */
export function mul(a: number, b: number): number {
  return checked(a * b);
}

/** @internal A bigint that must fit back into a safe integer. */
export function fromBig(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < -BigInt(Number.MAX_SAFE_INTEGER)) throw new OverflowError();
  return checked(Number(n));
}

/** floor(a / b) for bigints with b > 0 (bigint division truncates toward zero). */
export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

/** ceil(a / b) for bigints with b > 0. */
export function ceilDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a > 0n ? q + 1n : q;
}

export type UnitsResult<T> = { ok: true; value: T } | { ok: false; problem: string };

/** Parse tick and lot size and check that one tick × one lot is a whole number (≥ 1) of micro-USD. */
export function symbolUnitsOf(tickSize: unknown, lotSize: unknown): UnitsResult<SymbolUnits> {
  const tick = parseStep(tickSize);
  if (!tick.ok) return { ok: false, problem: `tickSize must be a positive decimal string (${tick.reason})` };
  const lot = parseStep(lotSize);
  if (!lot.ok) return { ok: false, problem: `lotSize must be a positive decimal string (${lot.reason})` };
  const product = BigInt(tick.value.units) * BigInt(lot.value.units);
  const scale = tick.value.scale + lot.value.scale;
  let micros: bigint;
  if (scale <= MICRO_SCALE) {
    micros = product * 10n ** BigInt(MICRO_SCALE - scale);
  } else {
    const divisor = 10n ** BigInt(scale - MICRO_SCALE);
    if (product % divisor !== 0n) {
      return { ok: false, problem: "tickSize × lotSize must be a whole number of micro-USD (≥ 0.000001)" };
    }
    micros = product / divisor;
  }
  if (micros > BigInt(Number.MAX_SAFE_INTEGER)) {
    return { ok: false, problem: "tickSize × lotSize is too large" };
  }
  return {
    ok: true,
    value: {
      tickSize: tickSize as string,
      lotSize: lotSize as string,
      tick: tick.value,
      lot: lot.value,
      microsPerTickLot: Number(micros),
    },
  };
}

/** True when two unit sets describe the same tick and lot (however the strings were written). */
export function sameUnits(a: SymbolUnits, b: SymbolUnits): boolean {
  return (
    a.tick.units === b.tick.units &&
    a.tick.scale === b.tick.scale &&
    a.lot.units === b.lot.units &&
    a.lot.scale === b.lot.scale
  );
}

/**
 * Compile a fee schedule. Returns `null` for a zero schedule (the common case: no fee arithmetic at all).
 * The strings are canonicalised (trailing zeros trimmed) so that a persisted order compares equal.
 */
export function feeRatesOf(fees: FeeSchedule | undefined, lot: Step): UnitsResult<FeeRates | null> {
  const bps = parseDecimal(fees?.notionalBps ?? "0", 4);
  if (!bps.ok || bps.value > MAX_FEE_BPS * 10_000) {
    return {
      ok: false,
      problem: `fees.notionalBps must be a decimal string in [0, ${MAX_FEE_BPS}] with at most 4 decimals`,
    };
  }
  const perUnit = parseDecimal(fees?.perUnit ?? "0", MICRO_SCALE);
  if (!perUnit.ok) {
    return {
      ok: false,
      problem: "fees.perUnit must be a non-negative decimal string with at most 6 decimals",
    };
  }
  if (bps.value === 0 && perUnit.value === 0) return { ok: true, value: null };
  const lotPow = 10n ** BigInt(lot.scale);
  return {
    ok: true,
    value: {
      notionalBps: formatDecimal(bps.value, 4, { trimZeros: true }),
      perUnit: formatDecimal(perUnit.value, MICRO_SCALE, { trimZeros: true }),
      bps4: bps.value,
      perUnitMicros: perUnit.value,
      lotUnits: BigInt(lot.units),
      lotPow,
      denominator: 100_000_000n * lotPow,
    },
  };
}

/** Notional of `qtyLots` at `priceTicks`, in micros. Throws OverflowError past the safe range. @internal */
export function notionalOf(units: SymbolUnits, priceTicks: number, qtyLots: number): number {
  return mul(mul(priceTicks, qtyLots), units.microsPerTickLot);
}

/** Exact fee of a fill, as a numerator over `rates.denominator` micro-USD. @internal */
export function feeNumerator(rates: FeeRates, notionalMicros: number, qtyLots: number): bigint {
  return (
    BigInt(notionalMicros) * BigInt(rates.bps4) * rates.lotPow +
    BigInt(rates.perUnitMicros) * BigInt(qtyLots) * rates.lotUnits * 100_000_000n
  );
}

/**
 * Charge the fee of one fill of an order, rounding up per order rather than per fill.
 *
 * `credit` (0 ≤ credit < denominator) is the part of a micro-USD the order has already paid for by rounding
 * up earlier fills. The fill's exact fee `n` is first taken from that credit; what remains is charged in
 * whole micros, rounded up, and the overpaid fraction becomes the new credit. Over an order's life the fees
 * charged are therefore ceil(exact total fee) however the order was split into fills. @internal
 */
export function chargeFee(rates: FeeRates, n: bigint, credit: bigint): { feeMicros: number; credit: bigint } {
  if (n <= credit) return { feeMicros: 0, credit: credit - n };
  const fee = ceilDiv(n - credit, rates.denominator);
  return { feeMicros: fromBig(fee), credit: fee * rates.denominator - (n - credit) };
}

/** Largest fee the order can still be charged if fills of exact total fee ≤ n arrive. @internal */
export function feeBound(rates: FeeRates, n: bigint, credit: bigint): number {
  return n <= credit ? 0 : fromBig(ceilDiv(n - credit, rates.denominator));
}
