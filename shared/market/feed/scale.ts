/**
 * Exact decimal scaling for feed adapters: an external decimal string × a scale factor, expressed in
 * whole steps of a PrepX tick or lot size, rounded half up. BigInt throughout: no float ever touches a
 * price on its way in.
 *
 * @example
 * ```ts
 * toSteps("67012.345", "0.001", "0.01");  // 6701 (67.012345 USD → 67.01 at tick 0.01)
 * ```
 */

interface Exact {
  /** value = digits × 10^-scale */
  digits: bigint;
  scale: number;
}

const DECIMAL = /^(\d{1,30})(?:\.(\d{1,30}))?$/;

function exact(input: string): Exact | null {
  const m = DECIMAL.exec(input);
  if (!m) return null;
  const frac = m[2] ?? "";
  return { digits: BigInt(`${m[1]}${frac}`), scale: frac.length };
}

/** `value × factor / step`, rounded half up, as a safe integer; null for malformed input or overflow. */
export function toSteps(value: string, factor: string, step: string): number | null {
  const v = exact(value);
  const f = exact(factor);
  const s = exact(step);
  if (v === null || f === null || s === null || s.digits === 0n) return null;
  // (v.d / 10^v.s) × (f.d / 10^f.s) / (s.d / 10^s.s) = v.d × f.d × 10^s.s / (s.d × 10^(v.s + f.s))
  const numerator = v.digits * f.digits * 10n ** BigInt(s.scale);
  const denominator = s.digits * 10n ** BigInt(v.scale + f.scale);
  const rounded = (2n * numerator + denominator) / (2n * denominator);
  if (rounded > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return Number(rounded);
}

/** Whether a string is a plain non-negative decimal the scaler accepts. */
export function isDecimal(input: unknown): input is string {
  return typeof input === "string" && DECIMAL.test(input);
}

/** ISO 8601 with any number of fractional digits → ms since epoch (truncated to the ms), or null. */
export function isoToMs(input: unknown): number | null {
  if (typeof input !== "string") return null;
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z$/.exec(input);
  if (!m) return null;
  const base = Date.parse(`${m[1]}Z`);
  if (Number.isNaN(base)) return null;
  const ms = Number((m[2] ?? "").slice(0, 3).padEnd(3, "0"));
  return base + ms;
}
