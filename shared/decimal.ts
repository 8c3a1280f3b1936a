/**
 * Fixed-point decimal helpers: decimal strings at the edge, safe integers inside.
 *
 * A value is held as an integer number of units of 10^-scale (e.g. scale 2: "12.34" ↔ 1234). Parsing
 * never throws: it returns `{ ok: true, value }` or `{ ok: false, reason }`. Results are JS numbers that
 * are safe integers (|value| ≤ Number.MAX_SAFE_INTEGER = 2^53 - 1 ≈ 9.007e15), so with scale 6
 * (micro-units) the largest amount is about 9.007e9 whole units; with scale 2, about 9.007e13.
 *
 * Round trip: for every safe integer `u` and scale `s`, `parseDecimal(formatDecimal(u, s), s)` gives `u`;
 * for every canonical string (no leading zeros, exactly `s` decimals, or none when s = 0),
 * `formatDecimal(parseDecimal(str, s).value, s) === str`.
 *
 * @example
 * ```ts
 * parseDecimal("12.34", 2);           // { ok: true, value: 1234 }
 * parseDecimal("12.345", 2);          // { ok: false, reason: "too_many_decimals" }
 * formatDecimal(1234, 2);             // "12.34"
 * parseMicros("1.5");                 // { ok: true, value: 1_500_000 }
 * const tick = parseStep("0.05");     // { ok: true, value: { units: 5, scale: 2 } }
 * parseInSteps("1.25", tick.value);   // { ok: true, value: 25 }
 * ```
 */

export type DecimalErrorReason =
  /** Not a string, empty, or not of the form `-?digits(.digits)?`. */
  | "invalid_format"
  /** More significant decimals than the scale allows (trailing zeros are fine). */
  | "too_many_decimals"
  /** The value does not fit in a safe integer number of units. */
  | "out_of_range"
  /** A minus sign where negatives are not allowed. */
  | "negative_not_allowed"
  /** A step (tick / lot size) that is zero or negative. */
  | "invalid_step"
  /** Not a whole number of steps (e.g. "1.23" with a 0.05 tick). */
  | "not_step_multiple";

export type DecimalResult<T = number> = { ok: true; value: T } | { ok: false; reason: DecimalErrorReason };

export interface ParseOptions {
  /** Accept a leading "-". Default false. */
  allowNegative?: boolean;
}

export interface FormatOptions {
  /** Drop trailing fractional zeros ("1.50" → "1.5", "2.00" → "2"). Default false (exactly `scale` decimals). */
  trimZeros?: boolean;
}

/** Number of decimals of micro-units (cash). */
export const MICRO_SCALE = 6;
/** Largest scale the helpers accept. */
export const MAX_SCALE = 15;

const MAX_SAFE_DIGITS = "9007199254740991";

function fail(reason: DecimalErrorReason): { ok: false; reason: DecimalErrorReason } {
  return { ok: false, reason };
}

function isDigits(s: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function checkScale(scale: number): boolean {
  return Number.isInteger(scale) && scale >= 0 && scale <= MAX_SCALE;
}

/**
 * Parse a decimal string into an integer number of 10^-scale units.
 * Accepted form: optional "-" (only with `allowNegative`), one or more digits, optionally "." and one or
 * more digits. No "+", exponent, whitespace, thousands separators, or bare "." / ".5" / "5.".
 */
export function parseDecimal(input: unknown, scale: number, options?: ParseOptions): DecimalResult {
  if (typeof input !== "string" || !checkScale(scale)) return fail("invalid_format");
  let start = 0;
  let negative = false;
  if (input.charCodeAt(0) === 45 /* - */) {
    negative = true;
    start = 1;
  }
  const dot = input.indexOf(".", start);
  const intEnd = dot === -1 ? input.length : dot;
  if (!isDigits(input, start, intEnd)) return fail("invalid_format");
  let frac = "";
  if (dot !== -1) {
    if (!isDigits(input, dot + 1, input.length)) return fail("invalid_format");
    frac = input.slice(dot + 1);
  }
  if (negative && options?.allowNegative !== true) return fail("negative_not_allowed");
  if (frac.length > scale) {
    for (let i = scale; i < frac.length; i++) {
      if (frac.charCodeAt(i) !== 48) return fail("too_many_decimals");
    }
    frac = frac.slice(0, scale);
  } else {
    frac = frac.padEnd(scale, "0");
  }
  // Strip leading zeros so the digit count says whether the value fits.
  let digits = input.slice(start, intEnd) + frac;
  let firstNonZero = 0;
  while (firstNonZero < digits.length - 1 && digits.charCodeAt(firstNonZero) === 48) firstNonZero++;
  digits = digits.slice(firstNonZero);
  if (
    digits.length > MAX_SAFE_DIGITS.length ||
    (digits.length === MAX_SAFE_DIGITS.length && digits > MAX_SAFE_DIGITS)
  ) {
    return fail("out_of_range");
  }
  const magnitude = Number(digits);
  // `0 - 0` would be fine but `-0` is not: never return negative zero.
  return { ok: true, value: negative && magnitude !== 0 ? -magnitude : magnitude };
}

/**
 * Format an integer number of 10^-scale units as a decimal string.
 * Throws a RangeError if `units` is not a safe integer or the scale is invalid: that is a programming
 * error, not bad user input.
 */
export function formatDecimal(units: number, scale: number, options?: FormatOptions): string {
  if (!Number.isSafeInteger(units)) throw new RangeError(`formatDecimal: not a safe integer: ${units}`);
  if (!checkScale(scale)) throw new RangeError(`formatDecimal: invalid scale: ${scale}`);
  const negative = units < 0;
  let digits = String(negative ? -units : units);
  if (scale > 0) {
    digits = digits.padStart(scale + 1, "0");
    let intPart = digits.slice(0, digits.length - scale);
    let frac = digits.slice(digits.length - scale);
    if (options?.trimZeros === true) {
      let end = frac.length;
      while (end > 0 && frac.charCodeAt(end - 1) === 48) end--;
      frac = frac.slice(0, end);
    }
    if (intPart === "") intPart = "0";
    digits = frac.length > 0 ? `${intPart}.${frac}` : intPart;
  }
  return negative ? `-${digits}` : digits;
}

/** Parse a cash amount into micro-units (6 decimals). */
export function parseMicros(input: unknown, options?: ParseOptions): DecimalResult {
  return parseDecimal(input, MICRO_SCALE, options);
}

/** Format micro-units as a decimal string with 6 decimals (or trimmed). */
export function formatMicros(micros: number, options?: FormatOptions): string {
  return formatDecimal(micros, MICRO_SCALE, options);
}

/** A positive step such as a tick size or lot size: `units` × 10^-scale. */
export interface Step {
  units: number;
  scale: number;
}

/**
 * Parse a positive step ("0.01", "0.05", "1", "0.001"). The scale is the number of decimals written,
 * minus trailing zeros ("0.010" is the same step as "0.01").
 */
export function parseStep(input: unknown): DecimalResult<Step> {
  if (typeof input !== "string") return fail("invalid_format");
  const dot = input.indexOf(".");
  let scale = dot === -1 ? 0 : input.length - dot - 1;
  while (scale > 0 && input.charCodeAt(dot + scale) === 48) scale--;
  if (scale > MAX_SCALE) return fail("too_many_decimals");
  const parsed = parseDecimal(input, scale);
  if (!parsed.ok) return parsed;
  if (parsed.value <= 0) return fail("invalid_step");
  return { ok: true, value: { units: parsed.value, scale } };
}

/**
 * Parse a decimal string into a whole number of steps ("1.25" with step 0.05 → 25).
 * Rejects values finer than the step's scale ("too_many_decimals") or between steps ("not_step_multiple").
 */
export function parseInSteps(input: unknown, step: Step, options?: ParseOptions): DecimalResult {
  const parsed = parseDecimal(input, step.scale, options);
  if (!parsed.ok) return parsed;
  if (parsed.value % step.units !== 0) return fail("not_step_multiple");
  const count = parsed.value / step.units;
  return { ok: true, value: count === 0 ? 0 : count };
}

/** Format a whole number of steps as a decimal string with the step's scale (25 steps of 0.05 → "1.25"). */
export function formatSteps(count: number, step: Step, options?: FormatOptions): string {
  if (!Number.isSafeInteger(count)) throw new RangeError(`formatSteps: not a safe integer: ${count}`);
  const units = count * step.units;
  if (!Number.isSafeInteger(units)) throw new RangeError(`formatSteps: out of range: ${count}`);
  return formatDecimal(units, step.scale, options);
}
