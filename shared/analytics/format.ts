/**
 * Wire formatting of analytics figures: exact money from bigint micro-USD, quantities from bigint lots,
 * and ratios as fixed-precision decimal strings. Pure.
 */
import { MICRO_SCALE, parseStep, type Step } from "../decimal.ts";

/** Formats `units` × 10^−scale exactly, trailing fractional zeros trimmed ("1.50" → "1.5"). */
export function formatBigDecimal(units: bigint, scale: number): string {
  const negative = units < 0n;
  let digits = (negative ? -units : units).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, "0");
    const intPart = digits.slice(0, digits.length - scale);
    const frac = digits.slice(digits.length - scale).replace(/0+$/, "");
    digits = frac.length > 0 ? `${intPart}.${frac}` : intPart;
  }
  return negative ? `-${digits}` : digits;
}

/** Micro-USD as a decimal string in USD, exactly as `formatMicros(…, { trimZeros: true })` does. */
export const formatUsd = (micros: bigint): string => formatBigDecimal(micros, MICRO_SCALE);

/** Lots as a quantity in shares: `lots × lotSize` ("3" lots of "0.5" → "1.5"). */
export function formatLots(lots: bigint, lotSize: string): string {
  const step = parseStep(lotSize);
  const s: Step = step.ok ? step.value : { units: 1, scale: 0 };
  return formatBigDecimal(lots * BigInt(s.units), s.scale);
}

/** A ratio with `decimals` fixed decimals ("0.6667"); null stays null; never "-0.0000". */
export function formatRatio(value: number | null, decimals: number): string | null {
  if (value === null || !Number.isFinite(value)) return null;
  const s = value.toFixed(decimals);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
}

/**
 * `numerator / denominator` rounded half up to `decimals` decimals, exactly (bigint), as a string;
 * null when the denominator is 0. Both must be ≥ 0.
 */
export function exactRatio(numerator: bigint, denominator: bigint, decimals: number): string | null {
  if (denominator === 0n) return null;
  const scale = 10n ** BigInt(decimals);
  const scaled = (2n * numerator * scale + denominator) / (2n * denominator);
  return formatFixed(scaled, decimals);
}

/** `units` × 10^−decimals with exactly `decimals` decimals ("6667", 4 → "0.6667"). */
export function formatFixed(units: bigint, decimals: number): string {
  const negative = units < 0n;
  let digits = (negative ? -units : units).toString();
  if (decimals > 0) {
    digits = digits.padStart(decimals + 1, "0");
    digits = `${digits.slice(0, digits.length - decimals)}.${digits.slice(digits.length - decimals)}`;
  }
  return negative ? `-${digits}` : digits;
}
